"""The trainer's speed settings, checkable without a GPU: bf16 / fp16 autocast and channels_last on
CUDA, fp32 on CPU, pinned memory only on CUDA, ``compile: true`` wraps the model in torch.compile."""
from __future__ import annotations

import pytest
import torch

from helpers_train import load_demo, person_split, single_torch_thread, tiny_member  # noqa: F401
from ensemble_core.manager import get_registry
from ensemble_core.errors import TrainingError
from ensemble_core.train.components import choose_precision


def test_auto_precision_on_cpu_is_fp32_without_channels_last():
    p = choose_precision(tiny_member(), torch.device("cpu"))
    assert p.name == "fp32" and not p.channels_last and not p.use_scaler


@pytest.mark.parametrize("bf16, name, scaler", [(True, "bf16", False), (False, "fp16", True)])
def test_auto_precision_on_cuda(monkeypatch, bf16, name, scaler):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    p = choose_precision(tiny_member(), torch.device("cuda"))
    assert p.name == name and p.channels_last and p.use_scaler == scaler


def test_channels_last_and_fp16_can_be_forced():
    assert choose_precision(tiny_member(channels_last=True), torch.device("cpu")).channels_last
    with pytest.raises(TrainingError, match="fp16 needs a CUDA device"):
        choose_precision(tiny_member(amp="fp16"), torch.device("cpu"))


def test_cpu_trainer_does_not_pin_and_compile_wraps_the_model(demo_dir, tmp_path):
    from ensemble_core.train.member import MemberTrainer
    ds = load_demo(demo_dir)
    trainer = MemberTrainer(tiny_member("mask", compile=True), ds, person_split(ds.train), tmp_path / "m",
                            device="cpu", quiet=True, registry=get_registry())
    assert not trainer.loaders.pin_memory and not trainer.loaders.val_loader().pin_memory
    assert trainer.forward_model is not trainer.model
    assert type(trainer.forward_model).__name__ == "OptimizedModule"
    plain = MemberTrainer(tiny_member("mask"), ds, person_split(ds.train), tmp_path / "p", device="cpu", quiet=True, registry=get_registry())
    assert plain.forward_model is plain.model
