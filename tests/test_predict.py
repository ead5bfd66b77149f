"""Issue 27: predict with a finished ensemble (and with its export) without retraining. Identity: the run's own
eval images give its submission.csv byte for byte; other images give what the members' own predictions give;
every refusal is one line naming the member or file and the fix, before anything is predicted or written."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ensemble_core.cli import main
from ensemble_core.manager import get_registry
from ensemble_core.pipeline import run_recipe
from ensemble_core.predict import predict
from ensemble_core.recipe import Recipe
from ensemble_core.runfolder import (DONE_FILE, ENSEMBLE_EVAL_FILE, EXPORT_FILE, PREDICT_PROBS_FILE, SUBMISSION_FILE,
                                     WEIGHTS_FILE, RunFolder, member_dir)
from helpers_data import tree_state
from helpers_train import load_demo, person_split, single_torch_thread  # noqa: F401 (autouse fixture)

# two backbones x 2 person splits + one refit member each (weighted_soft votes them, blended at refit_share),
# one multihead model per member (mask / gender / age heads), a decision that is applied: every part of a run
RECIPE = {
    "version": 1, "name": "predict-demo", "seed": 42,
    "split": {"name": "kfold", "params": {"n_splits": 2}},
    "refit": 1, "refit_share": 0.6,
    "voter": {"name": "weighted_soft"},
    "decision": {"name": "prior_power", "params": {"force": True}},
    "defaults": {"image_size": [32, 24], "batch_size": 16, "epochs": 1, "tta": ["hflip"],
                 "optimizer": {"name": "adamw", "params": {"lr": 3e-3}}},
    "tasks": [{"task": "multihead", "backbones": ["test_efficientnet", "test_resnet"]}],
}


@pytest.fixture(scope="module")
def finished(demo_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "run"
    run_recipe(RECIPE, data_dir=demo_dir, out_dir=out, quiet=True)
    return out


@pytest.fixture(scope="module")
def exported(finished, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "ensemble"
    assert main(["export", str(finished), str(out), "--quiet"]) == 0
    return out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


def writable_copy(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


# ---------------------------------------------------------------- identity
def test_predicting_the_runs_own_eval_images_gives_its_submission_byte_for_byte(finished, demo_dir, tmp_path):
    before = tree_state(finished)
    assert json.loads((finished / "decision.json").read_text())["applied"] == "prior_power"   # a fitted rule
    assert main(["predict", str(finished), str(demo_dir), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = tmp_path / "out"
    assert (out / SUBMISSION_FILE).read_bytes() == (finished / SUBMISSION_FILE).read_bytes()
    mine, run = np.load(out / PREDICT_PROBS_FILE), np.load(finished / ENSEMBLE_EVAL_FILE)
    assert list(mine["image_id"]) == list(run["image_id"]) and np.array_equal(mine["probs"], run["probs"])
    assert len(mine["class_names"]) == 18
    record = json.loads((out / "predict.json").read_text())
    assert record["decision"]["applied"] == "prior_power" and len(record["members"]) == 6
    assert record["voter"]["name"] == "weighted_soft" and "images/s" in (out / "report.md").read_text()
    assert tree_state(finished) == before                         # nothing in RUN_DIR changed
    assert not (out / ".predict-work").exists()


def test_an_export_predicts_the_same_bytes_without_the_training_data(finished, exported, demo_dir, tmp_path):
    files = {p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()}
    member = next(iter(json.loads((exported / EXPORT_FILE).read_text())["members"]))["run_name"]
    assert f"members/{member}/{WEIGHTS_FILE}" in files and "train_labels.npz" in files
    assert not any(name.endswith(".pt") for name in files)          # weights as safetensors only
    # the export alone, copied elsewhere (as a notebook uploads it), on its own copy of the eval images
    images, carried = tmp_path / "eval", tmp_path / "uploaded"
    shutil.copytree(demo_dir / "eval", images)
    shutil.copytree(exported, carried)
    predict(carried, images, out=tmp_path / "out", quiet=True)
    assert (tmp_path / "out" / SUBMISSION_FILE).read_bytes() == (finished / SUBMISSION_FILE).read_bytes()


def test_other_images_get_what_the_members_own_predictions_give(finished, demo_dir, tmp_path):
    """A second folder (other names, other order, a subset of the eval images plus training photos): the ensemble's
    probabilities equal the vote of what each member's own trainer predicts for those images."""
    from ensemble_core.ensemble.assemble import build_ensemble
    from ensemble_core.train.member import MemberTrainer
    from ensemble_core.train.predict import write_predictions

    ds = load_demo(demo_dir)
    folder = tmp_path / "new images"
    folder.mkdir()
    sources = list(ds.eval["path"])[::3] + list(ds.train["path"])[:9]
    for k, src in enumerate(reversed(sources)):
        shutil.copy(src, folder / f"img{k:03d}{Path(src).suffix}")
    record = predict(finished, folder, out=tmp_path / "out", quiet=True)
    got = np.load(tmp_path / "out" / PREDICT_PROBS_FILE)
    assert record["n_predicted"] == len(sources) and len(got["image_id"]) == len(sources)

    table = pd.DataFrame({"image_id": [f.name for f in sorted(folder.iterdir())],
                          "path": [str(f) for f in sorted(folder.iterdir())]})
    recipe = Recipe.load(finished / "recipe.json")
    own = tmp_path / "own"
    for m in recipe.plan():       # each member's own trainer, its best weights, on the new images
        copy = tmp_path / "copy" / m.run_name
        shutil.copytree(member_dir(finished, m.run_name), copy)
        split = (np.arange(len(ds.train)), np.array([], dtype=np.int64)) if m.refit else person_split(ds.train)
        trainer = MemberTrainer(m, dataclasses.replace(ds, eval=table), split, copy, registry=get_registry(),
                                quiet=True)
        trainer.load_best()
        write_predictions(member_dir(own, m.run_name) / "eval.npz", table["image_id"],
                          trainer.predict(trainer.loaders.eval_loader()))
    same = dataclasses.replace(ds, eval=table, eval_skipped=[], eval_order=None)
    ens = build_ensemble(recipe, recipe.plan(), finished, same, get_registry(), eval_from=own)
    order = [list(ens.eval_ids).index(i) for i in got["image_id"]]
    np.testing.assert_allclose(got["probs"], ens.eval18[order].astype(np.float32), rtol=0, atol=1e-6)


def test_process_executor_gives_the_same_bytes(finished, demo_dir, tmp_path):
    assert main(["predict", str(finished), str(demo_dir / "eval"), "--out", str(tmp_path / "out"), "--quiet",
                 "--executor", "process", "--executor-params", '{"workers": 2}']) == 0
    assert (tmp_path / "out" / SUBMISSION_FILE).read_bytes() == (finished / SUBMISSION_FILE).read_bytes()


def test_a_csv_of_paths_is_read_in_its_order(finished, demo_dir, tmp_path):
    paths = sorted((demo_dir / "eval" / "images").iterdir())[:5][::-1]
    csv = tmp_path / "list.csv"
    pd.DataFrame({"path": [str(p) for p in paths]}).to_csv(csv, index=False)
    predict(finished, csv, out=tmp_path / "out", quiet=True)
    rows = pd.read_csv(tmp_path / "out" / SUBMISSION_FILE)
    assert list(rows.columns) == ["ImageID", "ans"] and list(rows["ImageID"]) == [str(p) for p in paths]


# ---------------------------------------------------------------- unreadable images
def test_unreadable_images_are_named_and_skipped_with_the_fallback_row(finished, demo_dir, tmp_path, capsys,
                                                                        monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    good = sorted((demo_dir / "eval" / "images").iterdir())[:4]
    for f in good:
        shutil.copy(f, images / f.name)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    out = tmp_path / "out"
    assert main(["predict", str(finished), str(images), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert "broken.jpg (truncated JPEG" in err and "--skip_bad_files" in err and not out.exists()
    assert main(["predict", str(finished), str(images), "--out", str(out), "--skip_bad_files", "--quiet"]) == 0
    rows = pd.read_csv(out / SUBMISSION_FILE)
    assert list(rows["ImageID"]) == sorted([f.name for f in good] + ["broken.jpg"])    # every image has its row
    record = json.loads((out / "predict.json").read_text())
    assert record["fallback"]["image_ids"] == ["broken.jpg"]
    assert int(rows.set_index("ImageID").loc["broken.jpg", "ans"]) == record["fallback"]["class"]
    # into the same folder, a prediction that fails half way leaves no submission that looks like its own
    (images / good[0].name).write_bytes(b"")
    (images / "broken.jpg").unlink()
    import ensemble_core.predict as P

    def fails(*args, **kwargs):
        raise P.PredictError("a member failed")

    monkeypatch.setattr(P, "run_predictions", fails)
    assert main(["predict", str(finished), str(images), "--out", str(out), "--skip_bad_files", "--quiet"]) == 1
    assert "a member failed" in one_line_error(capsys) and not (out / SUBMISSION_FILE).exists()


# ---------------------------------------------------------------- refusals, one line each, nothing predicted
def refuse(args, capsys, *expected) -> str:
    assert main(["predict", *map(str, args)]) == 1
    err = one_line_error(capsys)
    for text in expected:
        assert text in err, err
    return err


def test_a_missing_checkpoint_is_refused_naming_the_member(finished, demo_dir, tmp_path, capsys):
    run = writable_copy(finished, tmp_path)
    name = sorted(p.name for p in (run / "members").iterdir() if p.is_dir())[0]
    RunFolder(member_dir(run, name)).best.unlink()
    refuse([run, demo_dir, "--out", tmp_path / "out"], capsys, f"member {name}", "best.pt are missing",
           "train it again")
    assert not (tmp_path / "out").exists()


def test_a_corrupt_checkpoint_is_refused_naming_the_member(finished, demo_dir, tmp_path, capsys):
    run = writable_copy(finished, tmp_path)
    name = sorted(p.name for p in (run / "members").iterdir() if p.is_dir())[1]
    best = RunFolder(member_dir(run, name)).best
    best.write_bytes(best.read_bytes()[:200])
    refuse([run, demo_dir, "--out", tmp_path / "out"], capsys, f"member {name}", str(best), "weights_only")
    assert not (tmp_path / "out").exists()


def test_unfinished_members_are_refused(finished, demo_dir, tmp_path, capsys):
    run = writable_copy(finished, tmp_path)
    name = sorted(p.name for p in (run / "members").iterdir() if p.is_dir())[2]
    (member_dir(run, name) / DONE_FILE).unlink()
    refuse([run, demo_dir, "--out", tmp_path / "out"], capsys, "1 of 6 member(s)", name, "not finished",
           "finish the run first")


def test_another_label_space_is_refused(finished, demo_dir, tmp_path, capsys):
    refuse([finished, demo_dir, "--out", tmp_path / "out", "--dataset", "image_folder",
            "--dataset-params", '{"classes": ["cat", "dog"]}'], capsys,
           "label space", "mask_status", "leave --dataset out")


def test_a_damaged_export_is_refused_naming_the_file(exported, demo_dir, tmp_path, capsys):
    copy = tmp_path / "ensemble"
    shutil.copytree(exported, copy)
    weights = next((copy / "members").iterdir()) / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-10])
    refuse([copy, demo_dir, "--out", tmp_path / "out"], capsys, str(weights), "export the run again")


def test_outputs_inside_the_run_folder_and_a_missing_decision_are_refused(finished, demo_dir, tmp_path, capsys):
    refuse([finished, demo_dir, "--out", finished / "predictions"], capsys, "inside", "never written")
    run = writable_copy(finished, tmp_path)
    (run / "decision.json").unlink()
    refuse([run, demo_dir, "--out", tmp_path / "out"], capsys, "decision.json not found",
           f"python -m ensemble_core ensemble {run}")


def test_export_refuses_a_folder_that_is_not_empty(finished, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert main(["export", str(finished), str(taken)]) == 1
    assert "not empty" in one_line_error(capsys)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]


def test_a_label_space_from_the_data_predicts_and_exports_the_same_bytes(tmp_path):
    """An ImageFolder run (classes from its folders, submission image,label with class names): the run folder and
    its export (which carries the label space, having no data folder) give the run's submission.csv."""
    from helpers_generic import make_image_folder

    data = make_image_folder(tmp_path / "if")
    recipe = {**RECIPE, "name": "predict-if", "dataset": {"name": "image_folder"}, "refit": 0,
              "decision": {"name": "argmax"}, "tasks": [{"task": "joint", "backbone": "test_efficientnet"}]}
    run_recipe(recipe, data_dir=data, out_dir=tmp_path / "run", quiet=True)
    predict(tmp_path / "run", data / "eval", out=tmp_path / "out", quiet=True)
    submission = (tmp_path / "run" / SUBMISSION_FILE).read_bytes()
    assert submission.startswith(b"image,label\n") and (tmp_path / "out" / SUBMISSION_FILE).read_bytes() == submission
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "export"), "--quiet"]) == 0
    predict(tmp_path / "export", data, out=tmp_path / "out2", quiet=True)
    assert (tmp_path / "out2" / SUBMISSION_FILE).read_bytes() == submission


def test_members_from_pretrained_weights_predict_without_them_at_their_own_inputs(demo_dir, tmp_path):
    """Members that started from a weights file and normalise as their recipe asks (mean = std = 0.5, bicubic, as
    tf_efficientnet_lite's weights do): predict rebuilds the architecture alone (the weights file may be gone, as
    on an inference machine: the trained weights replace it) and normalises as each member's config.json
    records, so the run's probabilities come back exactly; an export carries the same."""
    import timm
    from safetensors.torch import save_file

    imagenet = tmp_path / "imagenet.safetensors"
    save_file(timm.create_model("test_resnet", num_classes=10).state_dict(), str(imagenet))
    inputs = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic"}
    recipe = {**RECIPE, "name": "predict-weights", "refit": 0, "voter": "soft",
              "defaults": {**RECIPE["defaults"], "input_config": inputs},
              "tasks": [{"task": "multihead", "backbone": {"name": "test_resnet", "params": {
                  "weights": {"name": "file", "params": {"path": str(imagenet)}}}}}]}
    run = tmp_path / "run"
    run_recipe(recipe, data_dir=demo_dir, out_dir=run, quiet=True)
    config = json.loads(next((run / "members").glob("*/config.json")).read_text())
    assert config["weights"]["source"] == "file" and config["inputs"]["interpolation"] == "bicubic"
    assert main(["export", str(run), str(tmp_path / "export"), "--quiet"]) == 0
    imagenet.unlink()                                   # the pretrained file is not needed to predict

    for source, out in ((run, tmp_path / "out"), (tmp_path / "export", tmp_path / "out2")):
        assert main(["predict", str(source), str(demo_dir), "--out", str(out), "--quiet"]) == 0
        mine, theirs = np.load(out / PREDICT_PROBS_FILE), np.load(run / ENSEMBLE_EVAL_FILE)
        assert np.array_equal(mine["probs"], theirs["probs"])   # ImageNet's statistics would give other numbers
        assert (out / SUBMISSION_FILE).read_bytes() == (run / SUBMISSION_FILE).read_bytes()
