"""train_member end to end on the demo data: run folder layout, predictions, skip when DONE,
multi-head tasks, EMA + batch augmentation + scheduler, resume after a partial save."""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers_train import load_demo, person_split, tiny_member, single_torch_thread  # noqa: F401 (autouse fixture)

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def demo(demo_dir):
    ds = load_demo(demo_dir)
    return ds, person_split(ds.train)


@pytest.fixture(scope="module")
def mask_run(demo, tmp_path_factory):
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("mask", epochs=2)
    run_dir = tmp_path_factory.mktemp("runs") / member.run_name
    summary = train_member(member, ds, split, run_dir, quiet=True)
    return member, run_dir, summary


def test_run_folder_has_every_documented_file(mask_run):
    member, run_dir, summary = mask_run
    for rel in ("config.json", "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt", "oof.npz",
                "eval.npz", "summary.json", "DONE"):
        assert (run_dir / rel).is_file(), rel
    assert list((run_dir / "tb").glob("events.out.tfevents.*")), "no TensorBoard events"
    assert not list(run_dir.rglob("*.tmp"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["member"] == member.to_dict() and config["config_hash"] == member.config_hash()
    assert summary["status"] == "trained" and summary["epochs_run"] == 2


def test_metrics_has_one_line_per_epoch_with_the_documented_fields(mask_run):
    _, run_dir, _ = mask_run
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1]
    for r in lines:
        for key in ("train_loss", "val_loss", "lr", "macro_f1", "per_class_f1", "images_per_s"):
            assert key in r, key
        assert set(r["per_class_f1"]) == {"mask", "incorrect", "normal"}


def test_predictions_are_over_original_classes_and_align_with_the_data(mask_run, demo):
    ds, (_, val_rows) = demo
    _, run_dir, summary = mask_run
    oof = np.load(run_dir / "oof.npz")
    val = ds.train.iloc[val_rows]
    assert list(oof["image_id"]) == list(val["image_id"])
    assert oof["probs"].shape == (len(val), 3) and oof["probs"].dtype == np.float32
    np.testing.assert_allclose(oof["probs"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(oof["truth"], val["mask"].to_numpy())
    ev = np.load(run_dir / "eval.npz")
    assert list(ev["image_id"]) == list(ds.eval["image_id"]) and ev["probs"].shape == (len(ds.eval), 3)
    assert 0.0 <= summary["oof_macro_f1"] <= 1.0


def test_a_member_with_done_is_skipped(mask_run, demo):
    from ensemble_core.train import train_member
    ds, split = demo
    member, run_dir, _ = mask_run
    before = (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = train_member(member, ds, split, run_dir, quiet=True)
    assert again["status"] == "skipped"
    assert (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_multihead_task_trains_one_loss_per_head(demo, tmp_path):
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member({"name": "multihead", "params": {"head_losses": {"age": "focal"}}},
                         label_transform={"name": "age_threshold", "params": {"male": 58, "female": 57}})
    summary = train_member(member, ds, split, tmp_path / member.run_name, quiet=True)
    oof = np.load(tmp_path / member.run_name / "oof.npz")
    assert oof["probs"].shape[1] == 18 and summary["status"] == "trained"
    np.testing.assert_allclose(oof["probs"].sum(1), 1.0, atol=1e-5)


def test_ema_batch_augmentation_scheduler_and_grad_clip_train(demo, tmp_path):
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("age_female", epochs=2, ema_decay=0.9, grad_clip=1.0,
                         batch_augmentation={"name": "class_cutmix", "params": {"target_class": 2, "prob": 0.5}},
                         scheduler={"name": "cosine_warm_restarts", "params": {"T_0": 1}},
                         augmentations=["HueSaturationValue", {"name": "CenterCrop",
                                                               "params": {"height": 28, "width": 20}}])
    summary = train_member(member, ds, split, tmp_path / member.run_name, quiet=True)
    lines = [json.loads(x) for x in (tmp_path / member.run_name / "metrics.jsonl").read_text().splitlines()]
    assert all("ema_macro_f1" in r and "model_macro_f1" in r for r in lines)
    assert summary["best_weights"] in ("model", "ema")


def test_batch_augmentation_on_a_multihead_task_is_refused(demo, tmp_path):
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("multihead", batch_augmentation="cutmix")
    with pytest.raises(TrainingError, match="single-head"):
        train_member(member, ds, split, tmp_path / member.run_name, quiet=True)


def test_partial_checkpoint_is_never_loaded(mask_run, demo, tmp_path):
    """A leftover temp file is deleted, a damaged last.pt is refused with the fix."""
    import shutil

    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    member, run_dir, _ = mask_run
    copy = tmp_path / member.run_name
    shutil.copytree(run_dir, copy)
    (copy / "DONE").unlink()
    (copy / "checkpoints" / "last.pt.tmp").write_bytes(b"half a checkpoint")
    summary = train_member(member, ds, split, copy, quiet=True)  # last.pt is after the final epoch
    assert summary["resumed_from_epoch"] == 2 and not (copy / "checkpoints" / "last.pt.tmp").exists()
    (copy / "DONE").unlink()
    (copy / "checkpoints" / "last.pt").write_bytes(b"\x80garbage")
    with pytest.raises(TrainingError, match="Delete it"):
        train_member(member, ds, split, copy, quiet=True)


def test_a_run_folder_refuses_another_member(mask_run, demo, tmp_path):
    import shutil

    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    _, run_dir, _ = mask_run
    copy = tmp_path / "other"
    shutil.copytree(run_dir, copy)
    (copy / "DONE").unlink()
    with pytest.raises(TrainingError, match="config_hash"):
        train_member(tiny_member("mask", epochs=3), ds, split, copy, quiet=True)


def test_early_stopping_stops_after_patience_epochs_without_improvement(demo, tmp_path):
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("gender", epochs=3, early_stopping_patience=1,
                         optimizer={"name": "sgd", "params": {"lr": 0.0, "momentum": 0.0}})
    summary = train_member(member, ds, split, tmp_path / member.run_name, quiet=True)
    # training stops `patience` epochs after the best one (lr 0: usually right after epoch 2)
    assert summary["epochs_run"] == min(3, summary["best_epoch"] + 1 + 1)
    lines = (tmp_path / member.run_name / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == summary["epochs_run"]


def test_a_shared_image_cache_of_the_train_table_is_reused(demo, tmp_path, monkeypatch):
    """The pipeline may decode the train table once; the member then decodes only the eval images."""
    from ensemble_core.data.images import ImageCache
    from ensemble_core.train import inputs, train_member
    ds, split = demo
    shared = ImageCache(list(ds.train["path"]))
    built = []
    real = inputs.ImageCache

    def counting(paths, *args, **kwargs):
        built.append(len(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(inputs, "ImageCache", counting)
    member = tiny_member("gender")
    train_member(member, ds, split, tmp_path / member.run_name, quiet=True, image_cache=shared)
    assert built == [len(ds.eval)]
