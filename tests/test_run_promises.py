"""Promises of the run command that had no test: a user error (EnsembleCoreError) is not retried,
``run_recipe(skip_bad_files=...)`` end to end, and a run folder refusing a different split."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ensemble_core.pipeline import run_recipe
from ensemble_core.runfolder import SPLITS_FILE, SUBMISSION_FILE
from ensemble_core.errors import DataError
from ensemble_core.executors import MemberJob, run_member_attempts
from ensemble_core.runfolder import ERROR_FILE
from helpers_data import copy_demo, first_jpeg
from helpers_train import tiny_member
from helpers_pipeline import TINY, TruthExecutor, load_recipe_module


def folder_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- a user error is not retried
def test_an_ensemble_core_error_is_not_retried_and_names_the_fix(demo_dir, tmp_path):
    member = tiny_member("mask")
    job = MemberJob(member=member.to_dict(), data_dir=str(demo_dir), train_rows=np.array([0, 1, 10 ** 6]),
                    val_rows=np.array([2, 3]), run_dir=str(tmp_path / "members" / member.run_name))
    result = run_member_attempts(job, retries=3)
    assert result.status == "failed" and result.user_error is True
    assert result.attempts == 1, "a TrainingError (bad split, bad data, bad config) fails the same way again"
    assert result.error.startswith("TrainingError: split: train row 1000000 is outside the train table")
    assert "delete the split manifest to recompute it" in result.error and "after" not in result.error
    log = (Path(job.run_dir) / ERROR_FILE).read_text()
    assert "attempt 1 of 4" in log and "attempt 2" not in log and log.count("Traceback") == 1


# ---------------------------------------------------------------- skip_bad_files end to end
def one_split_single18() -> dict:
    recipe = load_recipe_module("single18").build(TINY)
    recipe["split"]["params"]["n_splits"] = 1
    return recipe


@pytest.mark.slow
def test_run_recipe_skip_bad_files_leaves_out_exactly_the_bad_image(demo_dir, tmp_path):
    data = copy_demo(demo_dir, tmp_path)
    bad = first_jpeg(data)
    bad.write_bytes(b"this is not a JPEG")
    bad_id = f"{bad.parent.name}/{bad.name}"
    n_photos = len(pd.read_csv(data / "train" / "train.csv")) * 7

    refused = tmp_path / "refused"
    with pytest.raises(DataError) as err:
        run_recipe(one_split_single18(), data_dir=data, out_dir=refused, quiet=True, skip_bad_files=False)
    message = str(err.value)
    assert f"{bad}: not a JPEG or PNG" in message and "--skip_bad_files" in message
    assert f"python -m ensemble_core check-data {data}" in message
    assert not refused.exists()                                        # a refused run writes nothing

    out = tmp_path / "run"
    result = run_recipe(one_split_single18(), data_dir=data, out_dir=out, quiet=True, skip_bad_files=True)
    assert result.trained == 1
    assert json.loads((out / "run.json").read_text())["exclude"] == [str(bad)]
    assert json.loads((out / "data_check.json").read_text())["skipped"] == [str(bad)]
    [member] = [p for p in (out / "members").iterdir() if p.is_dir()]
    summary = json.loads((member / "summary.json").read_text())
    assert summary["n_train"] + summary["n_val"] == n_photos - 1      # that image only, not its person
    assert bad_id not in set(np.load(member / "oof.npz")["image_id"])
    submission = pd.read_csv(out / SUBMISSION_FILE, dtype={"ImageID": str})
    info = pd.read_csv(data / "eval" / "info.csv", dtype={"ImageID": str})
    assert submission["ImageID"].tolist() == info["ImageID"].tolist()


# ---------------------------------------------------------------- a run folder refuses a different split
def test_a_run_folder_refuses_a_different_split_and_keeps_its_members(demo_dir, tmp_path, capsys):
    from ensemble_core.launch import launch, recipe_data
    build = load_recipe_module("single18").build
    out = tmp_path / "run"
    run_recipe(recipe_data(build, TINY), data_dir=demo_dir, out_dir=out, quiet=True,
               executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    members_before = folder_digest(out / "members")
    kept = {name: (out / name).read_bytes() for name in (SPLITS_FILE, SUBMISSION_FILE, "recipe.json", "run.json")}

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        launch("single18", build, data_dir=str(demo_dir), out_dir=str(out), preset=TINY, quiet=True,
               **{"split.params.n_splits": 2})
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    manifest = out.resolve() / SPLITS_FILE
    assert err.startswith(f"error: split manifest {manifest} was made with splitter ")
    assert "'n_splits': 3" in err and "'n_splits': 2" in err
    assert (f"Use a fresh output folder for other data or splits (the finished members here were trained on "
            f"these); to start this folder over, delete {manifest} and {manifest.parent / 'members'}") in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert folder_digest(out / "members") == members_before          # finished members untouched
    assert {name: (out / name).read_bytes() for name in kept} == kept


def test_run_recipe_refuses_a_different_split_seed_with_the_same_message(demo_dir, tmp_path):
    recipe = load_recipe_module("single18").build(TINY)
    out = tmp_path / "run"
    run_recipe(recipe, data_dir=demo_dir, out_dir=out, quiet=True,
               executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    with pytest.raises(DataError, match=r"splits\.json was made with splitter .* seed 42, but this run asks for "
                                        r".* seed 7\. Use a fresh output folder for other data or splits"):
        run_recipe({**recipe, "seed": 7}, data_dir=demo_dir, out_dir=out, quiet=True,
                   executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))


# ---------------------------------------------------------------- finished members are reused only for their data
def test_finished_members_are_refused_for_other_data_even_after_the_manifest_is_deleted(demo_dir, tmp_path):
    """A changed label makes splits.json refuse the run; deleting splits.json (an old message advised it) must
    not let members trained on the old labels be reused: the run is refused before anything is written. The same
    data with its manifest deleted reuses every member (the hash is of the split's people, images and labels)."""
    from helpers_runs import tiny_recipe
    data = copy_demo(demo_dir, tmp_path)
    out = tmp_path / "run"
    recipe = tiny_recipe()
    first = run_recipe(recipe, data_dir=data, out_dir=out, quiet=True)
    assert first.trained == 1
    member = next((out / "members").iterdir())
    assert json.loads((member / "config.json").read_text())["data_hash"]

    (out / SPLITS_FILE).unlink()     # same data: the manifest is remade the same, the member is reused
    again = run_recipe(recipe, data_dir=data, out_dir=out, quiet=True)
    assert again.trained == 0 and again.skipped == 1

    train_csv = data / "train" / "train.csv"
    table = pd.read_csv(train_csv, dtype=str)
    row = table.index[table["age"].astype(int) < 30][0]
    old_path = table.loc[row, "path"]
    table.loc[row, "age"] = "45"
    table.loc[row, "path"] = old_path.rsplit("_", 1)[0] + "_45"
    (data / "train" / "images" / old_path).rename(data / "train" / "images" / table.loc[row, "path"])
    table.to_csv(train_csv, index=False)
    with pytest.raises(DataError, match="was made from different data"):
        run_recipe(recipe, data_dir=data, out_dir=out, quiet=True)
    (out / SPLITS_FILE).unlink()
    before = folder_digest(out)
    with pytest.raises(DataError, match=r"1 finished member\(s\) in .*members were trained on other data than this "
                                        r"run gives them .*" + member.name + ".*use a fresh --out_dir"):
        run_recipe(recipe, data_dir=data, out_dir=out, quiet=True)
    assert folder_digest(out) == before               # nothing written, the finished run unchanged


def test_after_a_failure_the_local_executor_counts_finished_members_as_finished(demo_dir, tmp_path):
    """stop_on_error: the members after a failed one are "not_run", except those that finished before (their
    DONE is there: "skipped"), so the error does not claim that finished members were not run."""
    from ensemble_core.executors.local import LocalExecutor
    from ensemble_core.runfolder import DONE_FILE

    member = tiny_member("mask")
    bad = MemberJob(member=member.to_dict(), data_dir=str(demo_dir), train_rows=np.array([0, 1, 10 ** 6]),
                    val_rows=np.array([2, 3]), run_dir=str(tmp_path / "members" / "bad"))
    done_dir = tmp_path / "members" / "done"
    done_dir.mkdir(parents=True)
    (done_dir / DONE_FILE).write_text("done\n")
    done = MemberJob(member=member.to_dict(), data_dir=str(demo_dir), train_rows=np.array([0]),
                     val_rows=np.array([1]), run_dir=str(done_dir))
    later = MemberJob(member=member.to_dict(), data_dir=str(demo_dir), train_rows=np.array([0]),
                      val_rows=np.array([1]), run_dir=str(tmp_path / "members" / "later"))
    results = LocalExecutor(stop_on_error=True, retries=0).run([bad, done, later])
    assert [r.status for r in results] == ["failed", "skipped", "not_run"]
    assert results[2].error == "stopped after bad failed" and not (tmp_path / "members" / "later").exists()
