"""Safe, exact and recoverable runs (issue 10): nothing from a run folder or a user file can run code, flags
are strict, a refused run changes nothing, --skip_bad_files keeps every submission row, operating-system
failures are one line, every write is atomic with the user's umask, and a member's threads are its own."""
from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ensemble_core.manager import get_registry
from ensemble_core.atomic import atomic_write, atomic_write_text, remove_stale_temp_files
from ensemble_core.data.check import image_problem
from ensemble_core.errors import DataError, OverrideError, TrainingError
from ensemble_core.launch import parse_bool, recipe_commands
from ensemble_core.pipeline import run_recipe
from ensemble_core.runfolder import RUN_FILE, SUBMISSION_FILE
from ensemble_core.ensemble.predictions import PredictionCacheError, load_member
from ensemble_core.executors import MemberJob, run_member_attempts
from ensemble_core.runfolder import ERROR_FILE
from ensemble_core.recipe import Recipe
from ensemble_core.train import train_member
from ensemble_core.train.checkpoint import load_checkpoint
from helpers_data import copy_demo
from helpers_pipeline import TruthExecutor
from helpers_train import load_demo, person_split, tiny_member

REPO = Path(__file__).resolve().parents[1]


def truth_recipe(seed: int = 42) -> dict:
    return {"name": "safe", "seed": seed, "split": {"name": "shuffle", "params": {"n_splits": 2}},
            "defaults": {"backbone": "test_resnet", "image_size": [32, 24], "epochs": 1},
            "tasks": [{"task": "all18"}]}


def folder_hash(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes and its mode (a refused run must change none)."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}


class Planted:
    """Unpickling this creates ``path``: what a hostile file in a run folder would do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


# ---------------------------------------------------------------- 1. nothing from a run folder runs code
def test_planted_checkpoint_is_refused_and_runs_nothing(demo_dir, tmp_path):
    ds = load_demo(demo_dir)
    member = tiny_member("mask")
    run_dir = tmp_path / member.run_name
    marker = tmp_path / "pwned"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"model": Planted(marker), "epoch": 0}, run_dir / "checkpoints" / "last.pt")
    with pytest.raises(TrainingError) as info:
        train_member(member, ds, person_split(ds.train), run_dir, quiet=True, registry=get_registry())
    message = str(info.value)
    assert str(run_dir / "checkpoints" / "last.pt") in message and "Delete it to retrain" in message
    assert "\n" not in message and "objects beyond tensors" in message and "trust" not in message
    assert not marker.exists()                     # the payload never ran
    with pytest.raises(TrainingError, match="weights_only"):
        load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert not marker.exists()


def test_a_real_checkpoint_loads_safely_with_its_rng_state(demo_dir, tmp_path):
    ds = load_demo(demo_dir)
    member = tiny_member("gender")
    run_dir = tmp_path / member.run_name
    train_member(member, ds, person_split(ds.train), run_dir, quiet=True, registry=get_registry())
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)   # no allowlist needed
    assert state["epoch"] == 0 and isinstance(state["rng"]["numpy"][1], torch.Tensor)


def test_prediction_cache_with_pickled_arrays_is_refused(demo_dir, tmp_path):
    member = tiny_member("mask")
    run_dir = tmp_path / "members" / member.run_name
    run_dir.mkdir(parents=True)
    marker = tmp_path / "pwned"
    np.savez(run_dir / "oof.npz", image_id=np.array([Planted(marker)], dtype=object), probs=np.ones((1, 3)),
             truth=np.zeros(1, dtype=np.int64))
    (run_dir / "DONE").write_text("x\n")
    with pytest.raises(PredictionCacheError) as info:
        load_member(tmp_path, member, 3)
    assert str(run_dir / "oof.npz") in str(info.value) and "retrain" in str(info.value)
    assert not marker.exists()


def test_ensemble_eval_npz_loads_without_pickle(demo_dir, tmp_path):
    result = run_recipe(truth_recipe(), data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True,
                        executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    with np.load(result.out_dir / "ensemble_eval.npz", allow_pickle=False) as data:
        assert data["image_id"].dtype.kind == "U" and len(data["image_id"]) == len(data["probs"])


def test_pretrained_path_loads_safely_and_accepts_safetensors(tmp_path):
    from safetensors.torch import save_file

    from ensemble_core_plugins.weights import FileWeights
    import timm

    model = timm.create_model("test_resnet", num_classes=3)
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pth"
    torch.save({"state_dict": Planted(marker)}, hostile)
    with pytest.raises(TrainingError) as info:
        FileWeights(str(hostile)).load(model, "test_resnet")
    assert str(hostile) in str(info.value) and "safetensors" in str(info.value)
    assert not marker.exists()
    assert any(str(hostile) in p for p in FileWeights(str(hostile)).problems("test_resnet"))   # validate says so
    assert not marker.exists()
    weights = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    fresh = timm.create_model("test_resnet", num_classes=3)
    assert FileWeights(str(weights)).load(fresh, "test_resnet")["loaded"] == len(model.state_dict())
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[key])


# ---------------------------------------------------------------- 2. strict flags
@pytest.mark.parametrize("value,expected", [(True, True), ("TRUE", True), ("yes", True), ("1", True), (1, True),
                                            (False, False), ("false", False), ("No", False), ("0", False),
                                            (0, False)])
def test_booleans_accept_the_usual_words(value, expected):
    assert parse_bool("quiet", value) is expected


@pytest.mark.parametrize("value", ["flase", "ture", "2", 2, "on", ""])
def test_a_bad_boolean_names_the_flag_and_the_accepted_values(value):
    with pytest.raises(OverrideError) as info:
        parse_bool("skip_bad_files", value)
    assert "--skip_bad_files" in str(info.value) and "true / false" in str(info.value)


def recipe_run():
    return recipe_commands("safe", lambda preset: truth_recipe(), "test recipe")[1]


@pytest.mark.parametrize("flags,expected", [
    ({"quiet": "flase"}, "--quiet='flase': not a boolean"),
    ({"skip_bad_files": "flase"}, "--skip_bad_files='flase': not a boolean"),
    ({"data_dirr": "x"}, "--data_dirr: unknown flag. Did you mean --data_dir"),
    ({"skip_bad_file": True}, "Did you mean --skip_bad_files"),
    ({"exectuor": "local"}, "--exectuor: unknown flag. Did you mean --executor? Run flags"),   # named once
    ({"tasks.9.loss": "focal"}, "--tasks.9.loss: tasks has 1 entry (indexes 0..0); there is no entry 9"),
    ({"defaults.epochs.x": 1}, "--defaults.epochs.x: defaults.epochs is 1 (int), not a mapping or list"),
])
def test_bad_run_flags_are_one_line_before_anything_is_written(flags, expected, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        recipe_run()(data_dir=str(tmp_path / "nodata"), out_dir=str(out), **flags)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("flags,expected", [
    ({"executor": "local", "executor.params.stop_on_error": "flase"}, "--executor.params.stop_on_error='flase'"),
    ({"defaults.compile": "flase"}, "--defaults.compile='flase': not a boolean"),
    ({"defaults.channels_last": "maybe"}, "--defaults.channels_last='maybe': not a boolean"),
])
def test_boolean_recipe_and_executor_values_are_strict(flags, expected, demo_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        recipe_run()(data_dir=str(demo_dir), out_dir=str(tmp_path / "run"), **flags)
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_boolean_words_reach_the_recipe_and_the_executor(demo_dir, tmp_path):
    from ensemble_core.launch import recipe_data
    from ensemble_core.pipeline import make_executor
    from ensemble_core.manager import get_registry

    data = recipe_data(lambda preset: truth_recipe(), None, **{"defaults.compile": "No",
                                                               "defaults.channels_last": "auto"})
    assert data["defaults"]["compile"] is False and data["defaults"]["channels_last"] == "auto"
    runner = make_executor({"name": "local", "params": {"stop_on_error": "false"}}, Recipe.from_dict(data),
                           get_registry())
    assert runner.stop_on_error is False


def test_the_recipe_command_reports_bad_overrides_in_one_line(capsys):
    show = recipe_commands("safe", lambda preset: truth_recipe(), "test recipe")[0]
    with pytest.raises(SystemExit):
        show(**{"tasks.9.loss": "focal"})
    err = capsys.readouterr().err
    assert "--tasks.9.loss: tasks has 1 entry" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        show(data_dirr="x")
    assert "Run flags" not in capsys.readouterr().err     # `recipe` takes no run flags


def test_quiet_flase_through_the_real_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ensemble_core.fire_main", str(REPO / "recipes" / "full.py"), "run",
                           "--quiet=flase", "--out_dir", str(tmp_path / "run")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1
    assert "--quiet='flase': not a boolean" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- 3. check everything before writing anything
@pytest.fixture
def finished_run(demo_dir, tmp_path) -> Path:
    out = tmp_path / "run"
    run_recipe(truth_recipe(), data_dir=demo_dir, out_dir=out, quiet=True,
               executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    return out


def test_rerun_with_another_split_is_refused_and_changes_nothing(finished_run, demo_dir):
    before = folder_hash(finished_run)
    with pytest.raises(DataError, match="splits.json"):
        run_recipe(truth_recipe(seed=7), data_dir=demo_dir, out_dir=finished_run, quiet=True,
                   executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    assert folder_hash(finished_run) == before
    assert json.loads((finished_run / "recipe.json").read_text())["seed"] == 42   # still re-ensembles


def test_rerun_with_bad_data_is_refused_and_changes_nothing(finished_run, demo_dir, tmp_path):
    bad = copy_demo(demo_dir, tmp_path / "bad")
    victim = sorted((bad / "train" / "images").rglob("*.jp*g"))[0]
    victim.write_bytes(victim.read_bytes()[:200])
    recipe = truth_recipe()
    recipe["defaults"]["epochs"] = 2                              # new members would have to train
    before = folder_hash(finished_run)
    with pytest.raises(DataError) as info:
        run_recipe(recipe, data_dir=bad, out_dir=finished_run, quiet=True,
                   executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    assert str(victim) in str(info.value) and "--skip_bad_files" in str(info.value)
    assert folder_hash(finished_run) == before


def test_bad_executor_params_are_refused_before_the_folder_exists(demo_dir, tmp_path):
    from ensemble_core.errors import RecipeError

    out = tmp_path / "run"
    with pytest.raises(RecipeError, match="executor.params"):
        run_recipe(truth_recipe(), data_dir=demo_dir, out_dir=out, quiet=True,
                   executor={"name": "process", "params": {"wrokers": 2}})
    assert not out.exists()


# ---------------------------------------------------------------- 4. --skip_bad_files means it
def test_image_messages_say_how_to_fix(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("these are not pixels")
    assert "empty file (0 bytes); re-export or remove the file" == image_problem(empty)
    assert "not a JPEG or PNG image" in image_problem(text) and "remove the file" in image_problem(text)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_bad_eval_image_gets_the_fallback_row_with_skip_bad_files(damage, demo_dir, tmp_path):
    data = copy_demo(demo_dir, tmp_path)
    info = pd.read_csv(data / "eval" / "info.csv")
    victim_id = info["ImageID"].iloc[3]
    victim = data / "eval" / "images" / victim_id
    if damage == "corrupt":
        victim.write_bytes(b"")
    else:
        victim.unlink()
    executor = TruthExecutor(demo_dir / "eval" / "answers.csv")
    with pytest.raises(DataError) as refused:
        run_recipe(truth_recipe(), data_dir=data, out_dir=tmp_path / "refused", quiet=True, executor=executor)
    assert str(victim) in str(refused.value) and "--skip_bad_files" in str(refused.value)
    assert not (tmp_path / "refused").exists()

    result = run_recipe(truth_recipe(), data_dir=data, out_dir=tmp_path / "run", quiet=True, executor=executor,
                        skip_bad_files=True)
    sub = pd.read_csv(result.submission)
    assert sub["ImageID"].tolist() == info["ImageID"].tolist()       # every ImageID, in info.csv order
    fallback = result.metrics["eval_fallback"]
    assert fallback["image_ids"] == [victim_id]
    assert int(sub.loc[sub["ImageID"] == victim_id, "ans"].iloc[0]) == fallback["class"]
    answers = pd.read_csv(demo_dir / "eval" / "answers.csv").set_index("ImageID")["ans"]
    others = sub[sub["ImageID"] != victim_id]
    assert (others["ans"].to_numpy() == answers[others["ImageID"]].to_numpy()).all()
    run_info = json.loads((result.out_dir / RUN_FILE).read_text())
    assert run_info["eval_skipped"] == [victim_id] and run_info["eval_fallback"]["class"] == fallback["class"]
    report = (result.out_dir / "report.md").read_text()
    assert victim_id in report and "fallback class" in report

    from ensemble_core.cli import main as cli_main
    before = (result.out_dir / SUBMISSION_FILE).read_bytes()
    assert cli_main(["ensemble", str(result.out_dir), "--quiet"]) == 0        # recompute keeps the rows
    assert (result.out_dir / SUBMISSION_FILE).read_bytes() == before

    fixed = copy_demo(demo_dir, tmp_path / "fixed")      # the image is back; new members predict it
    recipe = truth_recipe()
    recipe["defaults"]["epochs"] = 2
    again = run_recipe(recipe, data_dir=fixed, out_dir=tmp_path / "run", quiet=True, executor=executor)
    assert "eval_fallback" not in again.metrics
    assert json.loads((again.out_dir / RUN_FILE).read_text())["eval_fallback"] is None


def test_an_eval_image_that_goes_bad_after_its_members_finished_gets_the_fallback(demo_dir, tmp_path):
    data = copy_demo(demo_dir, tmp_path)
    executor = TruthExecutor(demo_dir / "eval" / "answers.csv")
    out = tmp_path / "run"
    run_recipe(truth_recipe(), data_dir=data, out_dir=out, quiet=True, executor=executor)
    victim_id = pd.read_csv(data / "eval" / "info.csv")["ImageID"].iloc[5]
    (data / "eval" / "images" / victim_id).write_bytes(b"")
    more = truth_recipe()
    more["tasks"][0]["backbones"] = ["test_resnet", "test_efficientnet"]   # old members kept, new ones trained
    result = run_recipe(more, data_dir=data, out_dir=out, quiet=True, executor=executor, skip_bad_files=True)
    assert result.skipped == 2 and result.trained == 2
    assert result.metrics["eval_fallback"]["image_ids"] == [victim_id]
    sub = pd.read_csv(result.submission)
    assert int(sub.loc[sub["ImageID"] == victim_id, "ans"].iloc[0]) == result.metrics["eval_fallback"]["class"]


def test_skip_bad_files_leaves_out_a_bad_training_image_end_to_end(demo_dir, tmp_path):
    data = copy_demo(demo_dir, tmp_path)
    victim = sorted((data / "train" / "images").rglob("mask2.*"))[0]
    victim.write_bytes(b"GIF89a not a photo")
    result = run_recipe(truth_recipe(), data_dir=data, out_dir=tmp_path / "run", quiet=True, skip_bad_files=True,
                        executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    check = json.loads((result.out_dir / "data_check.json").read_text())
    assert check["skipped"] == [str(victim)]
    from ensemble_core.data.layout import load_dataset
    assert str(victim) in set(load_dataset(data).train["path"])          # on disk, listed ...
    assert str(victim) not in set(load_dataset(data, exclude=check["skipped"]).train["path"])   # ... left out
    assert "eval_fallback" not in result.metrics


# ---------------------------------------------------------------- 5. operating-system failures
def test_out_dir_under_a_file_is_one_line(demo_dir, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as info:
        recipe_run()(data_dir=str(demo_dir), out_dir=str(blocker / "run"), quiet=True)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(blocker) in err and ("Not a directory" in err or "File exists" in err)


def test_os_error_message_gives_the_fix():
    from ensemble_core.errors import os_error_message

    full = os_error_message(OSError(errno.ENOSPC, "No space left on device", "/runs/x/submission.csv"))
    assert full.startswith("/runs/x/submission.csv: No space left on device;") and "free disk space" in full
    ro = os_error_message(OSError(errno.EROFS, "Read-only file system", "/mnt/ro"))
    assert "choose a writable --out_dir" in ro
    taken = os_error_message(FileExistsError(errno.EEXIST, "File exists", "/etc/passwd"))
    assert taken == ("/etc/passwd: File exists; a file is there where a folder was expected: choose another "
                     "folder (e.g. --out / --out_dir)")


def test_a_full_disk_never_masks_the_failure_nor_skips_retries(tmp_path, monkeypatch, capsys):
    import ensemble_core.executors.job as executors

    def no_space(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(executors, "atomic_write_text", no_space)
    job = MemberJob(member={"not": "a member"}, data_dir=str(tmp_path), train_rows=np.arange(2),
                    val_rows=np.arange(2), run_dir=str(tmp_path / "members" / "m"))
    result = run_member_attempts(job, retries=2, dataset=object())
    assert result.status == "failed" and result.attempts == 3          # every retry ran
    assert "TypeError" in result.error                                  # the member's own failure
    assert "No space left on device" in capsys.readouterr().err
    assert not (tmp_path / "members" / "m" / ERROR_FILE).exists()


def test_a_full_disk_while_ensemble_rewrites_the_outputs_names_the_file(finished_run, monkeypatch, capsys):
    """Issue 27 item 6: the disk fills while `ensemble` rewrites a run's outputs. A full disk shows up in a writer's
    fsync (or write) as an OSError without a file name; the one line names the file and the fix, old files kept."""
    import ensemble_core.atomic as atomic
    from ensemble_core.cli import main

    before = folder_hash(finished_run)

    def no_space(path):
        raise OSError(errno.ENOSPC, "No space left on device")      # no file name, as a real full disk gives

    monkeypatch.setattr(atomic, "_fsync_file", no_space)
    assert main(["ensemble", str(finished_run), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "a file:" not in err
    written = err.removeprefix("error: ").split(": No space left on device")[0]
    assert Path(written).parent == finished_run and Path(written).name in before      # which file, in which folder
    assert "free disk space there" in err
    assert folder_hash(finished_run) == before                  # every old file intact, no temp file left


def test_a_full_disk_while_a_member_saves_its_checkpoint_is_one_line_and_not_retried(demo_dir, tmp_path,
                                                                                     monkeypatch):
    """torch reports a failed write as "RuntimeError: [enforce fail at inline_container.cc] . unexpected pos";
    the member's failure names the checkpoint and the fix instead, and it is not retried on the same full disk."""
    import ensemble_core.atomic as atomic

    saves = []
    real_open = builtins.open

    class Full:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, data):
            self.n += len(data)
            if self.n > 256:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def opener(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if ".pt." in Path(path).name and "w" in mode:
            saves.append(Path(path).name)
            return Full(fh)
        return fh

    monkeypatch.setattr(atomic, "open", opener, raising=False)
    recipe = {**truth_recipe(), "split": {"name": "shuffle", "params": {"n_splits": 1}}}
    with pytest.raises(TrainingError) as info:
        run_recipe(recipe, data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True)
    message = str(info.value)
    member = next((tmp_path / "run" / "members").iterdir())
    assert message.startswith(f"{member / 'checkpoints' / 'last.pt'}: No space left on device; free disk space")
    assert "\n" not in message and "inline_container" not in message and "RuntimeError" not in message
    assert len(saves) == 1                                        # one attempt: no retry on the same full disk
    assert not (member / "checkpoints" / "last.pt").exists() and not (member / ERROR_FILE).exists()
    assert not [p for p in (member / "checkpoints").iterdir()]   # no temp file left behind


def test_a_failed_write_leaves_no_temp_and_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old\n")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(OSError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_stale_temp_files_are_cleaned_when_a_run_starts(finished_run, demo_dir):
    member = next((finished_run / "members").iterdir())
    stale = [finished_run / ".submission.csv.1a2b3c4d5e6f.tmp",
             member / "checkpoints" / ".last.pt.abcdef012345.tmp", member / "checkpoints" / "last.pt.tmp"]
    users = [finished_run / "my notes.tmp", finished_run / ".vimrc.tmp"]   # not ours: never touched
    for path in stale + users:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"cut short by a kill")
    run_recipe(truth_recipe(), data_dir=demo_dir, out_dir=finished_run, quiet=True,
               executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"cut short by a kill" for p in users)
    assert remove_stale_temp_files(finished_run, recursive=True) == []


# ---------------------------------------------------------------- 6. atomic everywhere, with the user's umask
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_outputs_get_the_users_umask(umask, mode, demo_dir, tmp_path):
    old = os.umask(umask)
    try:
        result = run_recipe(truth_recipe(), data_dir=demo_dir, out_dir=tmp_path / "run", quiet=True,
                            executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
        atomic_write_text(tmp_path / "plain.txt", "x")
    finally:
        os.umask(old)
    for name in (SUBMISSION_FILE, "metrics.json", "report.md", "recipe.json", RUN_FILE, "splits.json",
                 "data_check.json", "ensemble_eval.npz"):
        assert (result.out_dir / name).stat().st_mode & 0o777 == mode, name
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == mode


def test_no_library_module_writes_a_file_in_place():
    """Every write goes through ensemble_core.atomic (the one owner of writing a file): writers that take a
    path or a file object only appear inside its callbacks, whose argument is named ``tmp`` or ``fh``."""
    import re

    never = (".write_text(", ".write_bytes(", "tempfile.mkstemp", "np.save(", "shutil.copy")
    in_callback = (".to_csv(", ".savefig(", "torch.save(", "np.savez(", "json.dump(")
    opened_for_writing = re.compile(r"open\([^)]*[\"']w")
    offenders = []
    for path in sorted((REPO / "ensemble_core").rglob("*.py")) + sorted((REPO / "plugins").rglob("*.py")):
        if path.name == "atomic.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip().startswith(('"', "f\"", "'", "f'", "#")):   # advice in a message or a comment
                continue
            line = re.sub(r"f?\"[^\"]*\"", '""', line)                       # and inside string literals
            bad = any(s in line for s in never)
            bad |= any(s in line for s in in_callback) and not re.search(r"\b(tmp|fh)\b", line)
            bad |= bool(opened_for_writing.search(line)) and "tmp" not in line
            if bad:
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []


# ---------------------------------------------------------------- 7. a member's threads are its own
def test_threads_are_part_of_the_member_and_recorded(demo_dir, tmp_path):
    one = tiny_member("mask")
    two = tiny_member("mask", threads=2)
    assert one.fields["threads"] == 1 and two.config_hash() != one.config_hash()
    legacy = dict(one.to_dict())
    legacy["fields"] = {k: v for k, v in legacy["fields"].items() if k != "threads"}
    from ensemble_core.recipe import MemberSpec
    assert MemberSpec.from_dict(legacy).config_hash() == one.config_hash()   # old run folders keep their names
    ds = load_demo(demo_dir)
    before = torch.get_num_threads()
    train_member(two, ds, person_split(ds.train), tmp_path / two.run_name, quiet=True, registry=get_registry())
    config = json.loads((tmp_path / two.run_name / "config.json").read_text())
    assert config["member"]["fields"]["threads"] == 2 and config["torch_threads"] == 2
    train_member(one, ds, person_split(ds.train), tmp_path / one.run_name, quiet=True, registry=get_registry())
    assert json.loads((tmp_path / one.run_name / "config.json").read_text())["torch_threads"] == 1
    assert torch.get_num_threads() == before        # the caller's process keeps its own setting


def test_threads_must_be_a_positive_integer():
    from ensemble_core.errors import RecipeError
    from ensemble_core.recipe import validate

    recipe = truth_recipe()
    recipe["defaults"]["threads"] = 0
    with pytest.raises(RecipeError, match=r"threads: must be a positive integer, got 0"):
        validate(Recipe.from_dict(recipe))


@pytest.mark.parametrize("flags,expected", [
    ({"data_dir": True}, "--data_dir needs a folder, e.g. --data_dir runs/mine (it was given without a value)"),
    ({"out_dir": True}, "--out_dir needs a folder"),
    ({"out_dir": 1.5}, "--out_dir: 1.5 is not a folder name; quote it"),
    ({"executor": True}, "--executor needs a name: local, process or ray (got True)"),
    ({"ray_address": True}, "--ray_address needs a Ray cluster address"),
])
def test_run_flags_given_without_a_value_are_one_line(flags, expected, tmp_path, capsys, monkeypatch):
    """fire passes a flag with no value as True and a number-like folder name as a number."""
    monkeypatch.chdir(tmp_path)
    args = {"data_dir": str(tmp_path / "nodata"), "out_dir": str(tmp_path / "run"), **flags}
    with pytest.raises(SystemExit) as info:
        recipe_run()(**args)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_a_number_as_a_folder_name_is_that_folder():
    from ensemble_core.launch import folder_flag
    assert folder_flag("out_dir", 5) == "5" and folder_flag("out_dir", None) is None
    assert folder_flag("data_dir", "x") == "x"


def test_the_recipe_command_refuses_a_misspelled_dotted_field(capsys):
    show = recipe_commands("safe", lambda preset: truth_recipe(), "test recipe")[0]
    with pytest.raises(SystemExit):
        show(**{"defaults.epochz": 1})
    err = capsys.readouterr().err
    assert "defaults.epochz: unknown field. Did you mean 'epochs'" in err and "Traceback" not in err
    assert show(**{"defaults.epochs": 2})["defaults"]["epochs"] == 2


def test_recipe_files_that_are_not_recipe_data_get_one_line(tmp_path):
    from ensemble_core.errors import RecipeError
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="it is not UTF-8 text .* save it as UTF-8 YAML or JSON"):
        Recipe.load(latin)
    module = tmp_path / "mine.py"
    module.write_text("x = 1\n")
    with pytest.raises(RecipeError, match=r"is a recipe module, not recipe data; print its recipe with `fire "):
        Recipe.load(module)
    with pytest.raises(RecipeError, match="is a folder; pass a recipe file"):
        Recipe.load(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(RecipeError, match=r"cannot parse .*broken.json as JSON \(a file not named"):
        Recipe.load(broken)


def test_the_check_data_hint_names_the_recipes_data_layout():
    """Run check-data as the error says and it reads the folder with the recipe's layout, not the mask one."""
    from ensemble_core.data.check import CheckReport, screen
    from ensemble_core.data.layout import Problem
    report = CheckReport(root="/d", problems=[Problem("/d/train.csv", "no column 'label'")])
    with pytest.raises(DataError) as info:
        screen(report, False, "/d", {"name": "csv", "params": {"label_column": "y"}})
    assert "`python -m ensemble_core check-data /d --dataset csv --dataset-params '{\"label_column\": \"y\"}'`" \
        in str(info.value)
    with pytest.raises(DataError) as info:
        screen(report, False, "/d", "mask_competition")
    assert "`python -m ensemble_core check-data /d` for the full report" in str(info.value)
