"""Helpers for the tests of other data layouts: a tiny 4-class ImageFolder tree and a two-factor CSV set."""
from __future__ import annotations

from pathlib import Path

from ensemble_core.data.demo import make_csv_demo, make_image_folder_demo

IMAGE_SIZE = (32, 28)


def make_image_folder(root: Path, n_people: int = 16, n_eval_people: int = 4) -> Path:
    """``root/train/<class>/<img>.jpg`` for 4 classes (2 photos per person, one masked, one bare) and
    ``root/eval/<img>.jpg``: what a user's ImageFolder tree looks like."""
    return make_image_folder_demo(root, n_people=n_people, n_eval_people=n_eval_people, image_size=IMAGE_SIZE)


def make_csv_set(root: Path, n_people: int = 8, n_eval_people: int = 2) -> Path:
    """``root/train.csv`` (image, mask, gender, person), ``root/images/``, ``root/eval/<img>.jpg``."""
    return make_csv_demo(root, n_people=n_people, n_eval_people=n_eval_people, image_size=IMAGE_SIZE)


def mask_layout_as_csv(data_dir: Path, out_dir: Path) -> tuple[Path, dict]:
    """The mask competition's train.csv turned into one row per photo (image, mask, gender and age-bin class
    names, person as the group) in ``out_dir/train.csv``, and the ``dataset`` reference that reads it (and
    the original eval/info.csv) with the ``csv`` layout."""
    import pandas as pd

    from ensemble_core.data.layout import load_dataset
    from ensemble_core.labels import AGE_NAMES, GENDER_NAMES, MASK_NAMES, age_to_class

    train = load_dataset(data_dir).train
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"image": train["image_id"], "mask": [MASK_NAMES[m] for m in train["mask"]],
                          "gender": [GENDER_NAMES[g] for g in train["gender"]],
                          "age": [AGE_NAMES[a] for a in age_to_class(train["age"])], "person": train["person"]})
    frame.to_csv(out_dir / "train.csv", index=False)
    root = Path(data_dir).resolve()
    ref = {"name": "csv", "params": {
        "label_space": "mask_status", "group_column": "person", "images_dir": str(root / "train" / "images"),
        "eval_csv": str(root / "eval" / "info.csv"), "eval_image_column": "ImageID",
        "eval_images_dir": str(root / "eval" / "images"), "submission_columns": ["ImageID", "ans"],
        "submission_value": "id"}}
    return out_dir, ref


class SeededExecutor:
    """Writes each member's predictions without training: noisy, seeded by the member's run name, over the
    images its job's data set (read by the job's data layout) holds. Voting, combining and deciding see
    the same numbers whichever layout read the data."""

    def run(self, jobs):
        import hashlib

        import numpy as np

        from ensemble_core.executors import MemberResult
        from ensemble_core.executors.job import load_job_dataset
        from ensemble_core.manager import get_registry
        from ensemble_core.recipe import Member
        from ensemble_core.runfolder import DONE_FILE
        from ensemble_core.tasks import build_task

        results = []
        for job in jobs:
            ds = load_job_dataset(job)
            member = Member.from_dict(job.member)
            task = build_task(get_registry(), member.task, label_space=ds.label_space)
            val = ds.train.iloc[job.val_rows]
            val = val[task.rows(val)]
            n, truth = task.num_original_classes, task.truth(val)
            rng = np.random.default_rng(int(hashlib.sha1(job.run_name.encode()).hexdigest()[:8], 16))
            p = rng.dirichlet(np.ones(n), size=len(val)) + np.eye(n)[truth] * (rng.random((len(val), 1)) < 0.6)
            run_dir = Path(job.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            np.savez(run_dir / "oof.npz", image_id=val["image_id"].to_numpy().astype(str),
                     probs=(p / p.sum(1, keepdims=True)).astype(np.float32), truth=truth)
            np.savez(run_dir / "eval.npz", image_id=ds.eval["image_id"].to_numpy().astype(str),
                     probs=rng.dirichlet(np.ones(n), size=len(ds.eval)).astype(np.float32))
            (run_dir / DONE_FILE).write_text("seeded\n")
            results.append(MemberResult(job.run_name, job.run_dir, "trained"))
        return results
