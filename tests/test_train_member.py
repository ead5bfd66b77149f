"""train_member end to end on the demo data: run folder layout, predictions, skip when DONE,
multi-head tasks and head losses, EMA, grad_clip, class CutMix, schedulers, early stopping, resume after
a partial save. Each feature's test fails when that feature is switched off."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ensemble_core.manager import get_registry

from helpers_train import load_demo, person_split, tiny_member, single_torch_thread  # noqa: F401 (autouse fixture)

pytest.importorskip("torch")


def unfinished_copy(run_dir, copy) -> None:
    """A copy of a finished member folder without DONE: what a resume would pick up."""
    import shutil
    shutil.copytree(run_dir, copy)
    (copy / "DONE").unlink()


@pytest.fixture(scope="module")
def demo(demo_dir):
    ds = load_demo(demo_dir)
    return ds, person_split(ds.train)


@pytest.fixture(scope="module")
def mask_run(demo, tmp_path_factory):
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("mask", epochs=2, batch_size=8)   # batch 8: predictions are not all one class
    run_dir = tmp_path_factory.mktemp("runs") / member.run_name
    summary = train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
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
    # the summary scores exactly the predictions written (scikit-learn's macro F1 and accuracy)
    from sklearn.metrics import accuracy_score, f1_score
    predicted = oof["probs"].argmax(1)
    assert len(np.unique(predicted)) > 1, "one class predicted everywhere: the F1 check below proves little"
    assert summary["oof_macro_f1"] == pytest.approx(f1_score(oof["truth"], predicted, average="macro"), abs=1e-12)
    assert summary["oof_accuracy"] == pytest.approx(accuracy_score(oof["truth"], predicted), abs=1e-12)
    per_class = f1_score(oof["truth"], predicted, average=None, labels=[0, 1, 2], zero_division=0)
    assert [summary["oof_per_class_f1"][k] for k in ("mask", "incorrect", "normal")] == pytest.approx(per_class)


def test_a_member_with_done_is_skipped(mask_run, demo):
    from ensemble_core.train import train_member
    ds, split = demo
    member, run_dir, _ = mask_run
    before = (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
    assert again["status"] == "skipped"
    assert (run_dir / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_multihead_task_trains_one_loss_per_head_and_head_losses_reach_their_head(demo, tmp_path):
    """head_losses {age: focal}: focal gets the age head's 3 logits and exactly the age targets of every
    training batch; the member loss gets the mask and gender heads."""
    from ensemble_core.train import train_member
    from ensemble_core.train.components import build_task
    from ensemble_core.train.inputs import select_samples
    from ensemble_core.train.seeding import epoch_order
    from helpers_train import recording_loss_registry
    ds, split = demo
    registry, calls = recording_loss_registry()
    member = tiny_member({"name": "multihead", "params": {"head_losses": {
                             "age": {"name": "recording", "params": {"wraps": "focal"}}}}},
                         label_transform={"name": "age_threshold", "params": {"male": 58, "female": 57}},
                         loss={"name": "recording", "params": {"wraps": "cross_entropy"}})
    summary = train_member(member, ds, split, tmp_path / member.run_name, registry=registry, quiet=True)
    oof = np.load(tmp_path / member.run_name / "oof.npz")
    assert oof["probs"].shape[1] == 18 and summary["status"] == "trained"
    np.testing.assert_allclose(oof["probs"].sum(1), 1.0, atol=1e-5)

    task = build_task(member, registry)
    targets = select_samples(task, ds, split).train_targets          # (N, 3): mask, gender, age
    steps, batch = len(targets) // 16, 16
    seen = targets[epoch_order(len(targets), member.seed, 0)[:steps * batch]]
    focal = [c for c in calls if c["wraps"] == "focal"]
    ce = [c for c in calls if c["wraps"] == "cross_entropy"]
    assert len(focal) == steps and {c["width"] for c in focal} == {3}
    age = [h.name for h in task.heads].index("age")
    expected = np.sort(seen[:, age][seen[:, age] >= 0])
    np.testing.assert_array_equal(np.sort(np.concatenate([c["targets"].numpy() for c in focal])), expected)
    assert len(ce) == 2 * steps and sorted(c["width"] for c in ce[:2]) == [2, 3]   # gender 2, mask 3



def test_multihead_aux_age_head_gets_its_loss_and_fine_targets(demo, tmp_path):
    """aux_age: age_bins adds a 14-wide head whose loss (head_losses.age_aux) sees the fine age bins of every
    training batch; the member still writes 18-class out-of-fold probabilities."""
    from ensemble_core.train import train_member
    from ensemble_core.train.components import build_task
    from ensemble_core.train.inputs import select_samples
    from ensemble_core.train.seeding import epoch_order
    from helpers_train import recording_loss_registry
    ds, split = demo
    registry, calls = recording_loss_registry()
    member = tiny_member({"name": "multihead", "params": {"aux_age": "age_bins", "head_losses": {
                             "age_aux": {"name": "recording", "params": {"wraps": "ordinal_cross_entropy"}}}}},
                         label_transform="age_bins5")
    summary = train_member(member, ds, split, tmp_path / member.run_name, registry=registry, quiet=True)
    oof = np.load(tmp_path / member.run_name / "oof.npz")
    assert summary["status"] == "trained" and oof["probs"].shape[1] == 18
    np.testing.assert_allclose(oof["probs"].sum(1), 1.0, atol=1e-5)
    task = build_task(member, registry)
    targets = select_samples(task, ds, split).train_targets          # (N, 4): mask, gender, age, age_aux
    assert targets.shape[1] == 4
    steps, batch = len(targets) // 16, 16
    seen = targets[epoch_order(len(targets), member.seed, 0)[:steps * batch]]
    aux = [c for c in calls if c["wraps"] == "ordinal_cross_entropy"]
    assert len(aux) == steps and {c["width"] for c in aux} == {14}
    np.testing.assert_array_equal(np.sort(np.concatenate([c["targets"].numpy() for c in aux])), np.sort(seen[:, 3]))

GRAD_CLIP = 0.05   # small enough that the tiny model's gradients are clipped on most steps


@pytest.fixture(scope="module")
def features_run(demo, tmp_path_factory):
    """One age_female member with EMA, grad_clip, class CutMix (prob 1), a step scheduler and augmentations,
    trained with a loss that records its targets and a clip_grad_norm_ that records what it did."""
    import torch

    from ensemble_core.train import train_member
    from ensemble_core.train.member import MemberTrainer
    from helpers_train import recording_loss_registry
    ds, split = demo
    registry, calls = recording_loss_registry()
    member = tiny_member("age_female", epochs=2, ema_decay=0.9, grad_clip=GRAD_CLIP,
                         loss={"name": "recording", "params": {"wraps": "cross_entropy"}},
                         batch_augmentation={"name": "class_cutmix", "params": {"target_class": 2, "prob": 1.0}},
                         scheduler={"name": "step", "params": {"step_size": 1, "gamma": 0.5}},
                         augmentations=["HueSaturationValue", {"name": "CenterCrop",
                                                               "params": {"height": 28, "width": 20}}])
    run_dir = tmp_path_factory.mktemp("features") / member.run_name
    initial = {k: v.detach().clone() for k, v in
               MemberTrainer(member, ds, split, run_dir, registry=registry, quiet=True).model.state_dict().items()}
    clips = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        before = float(real_clip(parameters, max_norm, *args, **kwargs))
        after = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad)
                                                            for p in parameters if p.grad is not None])))
        clips.append({"max_norm": float(max_norm), "before": before, "after": after})
        return torch.tensor(before)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
        summary = train_member(member, ds, split, run_dir, registry=registry, quiet=True)
    return {"member": member, "run_dir": run_dir, "summary": summary, "initial": initial, "calls": calls,
            "clips": clips, "steps": json.loads((run_dir / "config.json").read_text())["steps_per_epoch"]}


def test_ema_weights_are_kept_and_scored_apart_from_the_model(features_run):
    from ensemble_core.train.checkpoint import load_checkpoint
    run_dir, initial = features_run["run_dir"], features_run["initial"]
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert last["ema"] is not None
    weights = [k for k, v in initial.items() if v.is_floating_point() and "running" not in k]
    # the EMA moved away from the initial weights (it is updated) and is not the trained weights (it averages)
    assert any(not np.allclose(last["ema"][k].numpy(), initial[k].numpy()) for k in weights), \
        "the EMA weights are still the initial weights: EMA was never updated"
    assert any(not np.allclose(last["ema"][k].numpy(), last["model"][k].numpy()) for k in weights), \
        "the EMA weights equal the model's: no averaging"
    for record in (json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()):
        better = "ema" if record["ema_macro_f1"] > record["model_macro_f1"] else "model"
        assert record["weights"] == better and record["macro_f1"] == record[f"{better}_macro_f1"]
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["weights"] == features_run["summary"]["best_weights"]


def test_grad_clip_bounds_the_gradient_norm_of_every_step(features_run):
    clips, steps = features_run["clips"], features_run["steps"]
    assert len(clips) == 2 * steps, "clip_grad_norm_ is not called once per training step"
    assert {c["max_norm"] for c in clips} == {GRAD_CLIP}
    assert all(c["after"] <= GRAD_CLIP * (1 + 1e-4) for c in clips)
    assert any(c["before"] > GRAD_CLIP * 1.5 for c in clips), "no step needed clipping; the test proves nothing"


def test_class_cutmix_pastes_the_target_class_into_the_training_batches(features_run):
    calls, steps = features_run["calls"], features_run["steps"]
    assert len(calls) == 2 * steps
    soft = [c["targets"] for c in calls]
    assert all(t.ndim == 2 and t.shape[1] == 3 for t in soft), "the loss got hard labels: no batch augmentation"
    soft = np.concatenate([t.numpy() for t in soft])
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-5)
    other = soft[:, :2].sum(1) > 0                         # rows that are not (entirely) class 2
    # prob 1: (nearly) every such row received a box of a class-2 sample; plain CutMix would give ~ 1 in 4
    assert (soft[other, 2] > 0).mean() > 0.8


def test_the_scheduler_sets_each_epochs_learning_rate(features_run):
    lines = [json.loads(x) for x in (features_run["run_dir"] / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in lines] == pytest.approx([3e-3, 1.5e-3])   # step: halved after every epoch


def test_class_cutmix_on_a_multihead_task_is_refused_and_cutmix_trains_it(demo, tmp_path):
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("multihead", batch_augmentation={"name": "class_cutmix", "params": {"target_class": 2}})
    with pytest.raises(TrainingError, match="single-head tasks only.*Use cutmix or mixup"):
        train_member(member, ds, split, tmp_path / member.run_name, quiet=True, registry=get_registry())
    member = tiny_member("multihead", batch_augmentation={"name": "cutmix", "params": {"prob": 1.0}}, epochs=1)
    summary = train_member(member, ds, split, tmp_path / "cutmix" / member.run_name, quiet=True,
                           registry=get_registry())
    assert summary["status"] == "trained" and np.isfinite(summary["oof_macro_f1"])


def test_multihead_soft_targets_are_per_head_blocks_that_cutmix_and_mixup_mix():
    import torch

    from ensemble_core.tasks import MultiHeadTask, age_bins5
    from ensemble_core.train.components import HeadLosses, HeadSoftTargets
    task = MultiHeadTask(age_bins5())
    slices = task.head_slices()                                   # mask 0:3, gender 3:5, age 5:10
    targets = torch.tensor([[0, 1, 4], [2, 0, 0], [1, -1, 2]])   # -1: unknown gender
    _, blocks = HeadSoftTargets(lambda im, t: (im, t), slices)(torch.zeros(3, 3, 8, 8), targets)
    assert blocks.shape == (3, 10) and blocks.dtype == torch.float32
    assert blocks[0].nonzero().flatten().tolist() == [0, 4, 9]
    assert blocks[2, 3:5].sum() == 0                              # an unknown label stays out of its head
    ce = HeadLosses([torch.nn.CrossEntropyLoss()] * 3, slices, ["mask", "gender", "age"])
    logits = torch.randn(3, 10)
    assert torch.allclose(ce(logits, blocks), ce(logits, targets))   # one-hot blocks = the class ids
    reg = get_registry()
    for name in ("cutmix", "mixup"):
        torch.manual_seed(0)
        aug = HeadSoftTargets(reg.build("batch_augmentation", {"name": name, "params": {"prob": 1.0}}, 10), slices)
        images = torch.rand(16, 3, 8, 8)
        mixed_images, soft = aug(images, torch.stack([torch.randint(0, 3, (16,)), torch.randint(0, 2, (16,)),
                                                      torch.randint(0, 5, (16,))], 1))
        assert not torch.equal(mixed_images, images)
        for sl in slices:                                         # every head's block is a distribution
            assert torch.allclose(soft[:, sl].sum(1), torch.ones(16))
        assert ((soft > 0) & (soft < 1)).any(), f"{name}: no row mixes two classes"
        assert torch.isfinite(ce(torch.randn(16, 10), soft))


def test_partial_checkpoint_is_never_loaded(mask_run, demo, tmp_path):
    """A leftover temp file is deleted, a damaged last.pt is refused with the fix."""
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    member, run_dir, _ = mask_run
    copy = tmp_path / member.run_name
    unfinished_copy(run_dir, copy)
    (copy / "checkpoints" / "last.pt.tmp").write_bytes(b"half a checkpoint")
    summary = train_member(member, ds, split, copy, quiet=True, registry=get_registry())  # last.pt is after the final epoch
    assert summary["resumed_from_epoch"] == 2 and not (copy / "checkpoints" / "last.pt.tmp").exists()
    (copy / "DONE").unlink()
    (copy / "checkpoints" / "last.pt").write_bytes(b"\x80garbage")
    with pytest.raises(TrainingError, match="Delete it"):
        train_member(member, ds, split, copy, quiet=True, registry=get_registry())


def test_a_run_folder_refuses_another_member(mask_run, demo, tmp_path):
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    _, run_dir, _ = mask_run
    copy = tmp_path / "other"
    unfinished_copy(run_dir, copy)
    with pytest.raises(TrainingError, match="config_hash"):
        train_member(tiny_member("mask", epochs=3), ds, split, copy, quiet=True, registry=get_registry())


def test_a_run_folder_refuses_another_split_and_is_left_as_it_was(mask_run, demo, tmp_path):
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    from helpers_data import tree_state
    ds, (train_rows, val_rows) = demo
    member, run_dir, _ = mask_run
    copy = tmp_path / "other-split"
    unfinished_copy(run_dir, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    state = tree_state(copy)
    other = (train_rows[1:], np.concatenate([val_rows, train_rows[:1]]))      # one row moved to validation
    with pytest.raises(TrainingError) as err:
        train_member(member, ds, other, copy, quiet=True, registry=get_registry())
    message = str(err.value)
    assert message.startswith(f"{copy / 'config.json'}: this run folder was started with split_hash ")
    assert "resumes only the same member, split and data (its people, images and labels)" in message
    assert f"Use another run folder, or delete {copy} to start over" in message
    assert tree_state(copy) == state and {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_a_run_folder_refuses_to_resume_on_changed_labels(mask_run, demo, tmp_path):
    """Same rows, one training label changed: data_hash differs, the partial member is not resumed on it."""
    import dataclasses
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    member, run_dir, _ = mask_run
    copy = tmp_path / "changed-labels"
    unfinished_copy(run_dir, copy)
    train = ds.train.copy()
    row = train.index[split[0][0]]
    train.loc[row, "gender"] = 1 - train.loc[row, "gender"]
    with pytest.raises(TrainingError, match=r"started with data_hash '[0-9a-f]{12}', but this member has "):
        train_member(member, dataclasses.replace(ds, train=train), split, copy, quiet=True, registry=get_registry())


def test_early_stopping_stops_after_patience_epochs_without_improvement(demo, tmp_path, monkeypatch):
    """Validation F1 is scripted: best at epoch 0, better at 2, then two epochs without improvement."""
    from ensemble_core.train import train_member
    from ensemble_core.train.member import MemberTrainer
    ds, split = demo
    scripted = [0.5, 0.4, 0.6, 0.55, 0.58, 0.9]
    real_validate = MemberTrainer.validate

    def validate(self):
        chosen, sc, val_loss, f1s = real_validate(self)
        return chosen, {**sc, "macro_f1": scripted[self.progress.epoch + 1]}, val_loss, f1s

    monkeypatch.setattr(MemberTrainer, "validate", validate)
    member = tiny_member("gender", epochs=6, early_stopping_patience=2)
    summary = train_member(member, ds, split, tmp_path / member.run_name, quiet=True, registry=get_registry())
    # epoch 2 improves (the count restarts), epochs 3 and 4 do not: stop before epoch 5 (the 0.9)
    assert summary["epochs_run"] == 5 and summary["stopped_early"] is True
    assert summary["best_epoch"] == 2 and summary["best_val_macro_f1"] == 0.6
    lines = [json.loads(x) for x in (tmp_path / member.run_name / "metrics.jsonl").read_text().splitlines()]
    assert [r["macro_f1"] for r in lines] == scripted[:5]


def test_a_shared_image_cache_of_the_train_table_is_reused(demo, tmp_path, monkeypatch):
    """The pipeline may decode the train table once; the member then decodes only the eval images."""
    from ensemble_core.data.images import ImageCache
    from ensemble_core.train import inputs, train_member
    ds, split = demo
    shared = ImageCache(list(ds.train["path"]))
    built = []
    real = inputs.image_cache

    def counting(paths, *args, **kwargs):
        built.append(len(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(inputs, "image_cache", counting)
    member = tiny_member("gender")
    train_member(member, ds, split, tmp_path / member.run_name, quiet=True, image_cache=shared, registry=get_registry())
    assert built == [len(ds.eval)]


def test_val_every_scores_every_nth_epoch_and_the_last_and_patience_counts_validations(demo, tmp_path,
                                                                                        monkeypatch):
    """val_every 2 over 5 epochs validates after epochs 2, 4 and 5 (1-based) only; a skipped epoch logs null
    figures, cannot become best and does not count against early-stopping patience."""
    from ensemble_core.train import train_member
    from ensemble_core.train.member import MemberTrainer
    ds, split = demo
    calls = []
    scripted = {1: 0.5, 3: 0.4, 4: 0.45}       # 0-based epochs that are scored -> their F1
    real_validate = MemberTrainer.validate

    def validate(self):
        epoch = self.progress.epoch + 1
        calls.append(epoch)
        chosen, sc, val_loss, f1s = real_validate(self)
        return chosen, {**sc, "macro_f1": scripted[epoch]}, val_loss, f1s

    monkeypatch.setattr(MemberTrainer, "validate", validate)
    member = tiny_member("gender", epochs=5, val_every=2, early_stopping_patience=2, ema_decay=0.9)
    run_dir = tmp_path / member.run_name
    summary = train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
    assert calls == [1, 3, 4]
    # two validations without improvement (epochs 3 and 4): stopping would come after the last epoch anyway
    assert summary["epochs_run"] == 5 and summary["best_epoch"] == 1 and summary["best_val_macro_f1"] == 0.5
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["macro_f1"] for r in lines] == [None, 0.5, None, 0.4, 0.45]
    assert [r["best_macro_f1"] for r in lines] == [None, 0.5, 0.5, 0.5, 0.5]     # never -Infinity
    assert lines[0]["val_loss"] is None and "model_macro_f1" not in lines[0]
    assert "model_macro_f1" in lines[1] and "-Infinity" not in (run_dir / "metrics.jsonl").read_text()
    best = __import__("torch").load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == 1


def test_val_every_is_hash_neutral_at_one_and_named_in_the_folder_hash_above(demo):
    assert tiny_member("gender", val_every=1).run_name == tiny_member("gender").run_name
    assert tiny_member("gender", val_every=3).run_name != tiny_member("gender").run_name


def test_val_every_with_a_plateau_schedule_is_refused_when_training_starts(demo, tmp_path):
    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("gender", epochs=2, val_every=2, scheduler={"name": "timm_plateau", "params": {}})
    with pytest.raises(TrainingError, match="val_every 2 leaves epochs without the validation score"):
        train_member(member, ds, split, tmp_path / member.run_name, quiet=True, registry=get_registry())
    assert not (tmp_path / member.run_name / "DONE").exists()


def test_a_member_with_a_bad_val_every_is_refused_before_training(demo, tmp_path):
    """train_member called without a recipe's validation: the field and the fix are named, nothing is trained."""
    import dataclasses

    from ensemble_core.errors import TrainingError
    from ensemble_core.train import train_member
    ds, split = demo
    for value in (0, None):
        member = dataclasses.replace(tiny_member("gender"), val_every=value)
        with pytest.raises(TrainingError, match=r"val_every must be a positive integer \(1 scores every epoch\)"):
            train_member(member, ds, split, tmp_path / f"bad{value}", quiet=True, registry=get_registry())
        assert not (tmp_path / f"bad{value}" / "metrics.jsonl").exists()
