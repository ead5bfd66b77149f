"""The contract kit (ensemble_core.contracts / ensemble_core.testing) catches broken plugin components with one
line naming the kind, the component and its plugin, and it does so before any training: when a recipe is
validated (cheap kinds) and when a member is built (backbone and loss)."""
from __future__ import annotations


import numpy as np
import pytest

from ensemble_core import ComponentSpec, hookimpl
from ensemble_core.errors import ComponentContractError, RecipeError
from ensemble_core.manager import build_catalog
from ensemble_core.testing import check_component, components, parametrize_components
from helpers_pipeline import plugin_module
from helpers_train import single_torch_thread  # noqa: F401 (autouse fixture)

PLUGIN = "broken_plugin"


# ---------------------------------------------------------------- broken components
class MedianVoteWithoutCall:
    """The example plugin's median voter with its __call__ forgotten (the issue's original failure)."""

    def fit(self, probs, targets):
        return self


class MedianVoteFillingUnpredicted:
    """Returns uniform rows on the images no member predicted (a reading of "finite rows summing to 1")."""

    def fit(self, probs, targets):
        return self

    def __call__(self, probs):
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = np.nanmedian(probs, axis=0)
        out = out / out.sum(axis=1, keepdims=True)
        out[np.isnan(out).any(axis=1)] = 1.0 / out.shape[1]
        return out


def per_sample_loss():
    import torch

    class PerSample(torch.nn.Module):   # forgot .mean(): (N,) instead of a scalar
        def forward(self, logits, targets):
            return torch.nn.functional.cross_entropy(logits, targets, reduction="none")

    return PerSample()


def _image_transform(apply):
    import albumentations as A

    class Broken(A.ImageOnlyTransform):
        def __init__(self):
            super().__init__(p=1.0)

        def apply(self, img, **params):
            return apply(img)

        def get_transform_init_args_names(self):
            return ()

    return Broken()


def grey_augmentation():
    return _image_transform(lambda img: img.mean(axis=2).astype(np.uint8))      # (H, W): channel dropped


def float_augmentation():
    return _image_transform(lambda img: img / 255.0)       # float64: neither uint8 nor albumentations' float32


class LossyExecutor:
    """Trains (here: skips) every job but forgets to report the last one."""

    def run(self, jobs):
        from ensemble_core.executors import run_member_job
        return [run_member_job(job) for job in jobs[:-1]]


def wide_backbone(num_classes, pretrained: bool = False):
    import torch
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000))


def _plugin():
    here = __name__

    @hookimpl
    def ensemble_register_voters():
        return [ComponentSpec("median_nocall", "voter", f"{here}:MedianVoteWithoutCall"),
                ComponentSpec("median_filling", "voter", f"{here}:MedianVoteFillingUnpredicted")]

    @hookimpl
    def ensemble_register_losses():
        return [ComponentSpec("per_sample", "loss", f"{here}:per_sample_loss")]

    @hookimpl
    def ensemble_register_augmentations():
        return [ComponentSpec("grey", "augmentation", f"{here}:grey_augmentation"),
                ComponentSpec("as_float", "augmentation", f"{here}:float_augmentation")]

    @hookimpl
    def ensemble_register_executors():
        return [ComponentSpec("lossy", "executor", f"{here}:LossyExecutor")]

    @hookimpl
    def ensemble_register_backbones():
        return [ComponentSpec("wide", "backbone", f"{here}:wide_backbone")]

    return plugin_module(PLUGIN, locals())


@pytest.fixture(scope="module")
def catalog():
    return build_catalog([_plugin()], autoload=False)


def expect(kind, name, what, catalog, **kw):
    with pytest.raises(ComponentContractError) as info:
        check_component(kind, name, registry=catalog, **kw)
    message = str(info.value)
    assert message.startswith(f"{kind} {name!r} (plugin {PLUGIN}): "), message
    assert what in message and "\n" not in message, message
    assert (info.value.kind, info.value.name, info.value.origin) == (kind, name, PLUGIN)
    return message


# ---------------------------------------------------------------- check_component catches each one
def test_check_component_catches_a_voter_without_call(catalog):
    message = expect("voter", "median_nocall", "has no __call__", catalog)
    assert "a voter must be callable as voter(probs) -> (N, C)" in message


def test_check_component_catches_a_voter_that_fills_the_images_no_member_predicted(catalog):
    """The contract's rule (docs/ARCHITECTURE.md): rows no member predicted stay NaN. The kit's out-of-fold data
    has such images, so a voter that fills them fails the kit (the engine masks them anyway)."""
    message = expect("voter", "median_filling", "image(s) no member predicted; leave those rows NaN", catalog)
    assert "gave values on 40 of the 40 image(s)" in message
    check_component("voter", "soft", registry=catalog)     # the built-in keeps them NaN


def test_check_component_catches_a_loss_that_is_not_a_scalar(catalog):
    message = expect("loss", "per_sample", "gave shape (8,)", catalog)
    assert "a loss must return a scalar float tensor" in message


def test_check_component_catches_an_augmentation_with_the_wrong_shape_or_dtype(catalog):
    assert "(H, W, 3)" in expect("augmentation", "grey", "returned shape (32, 24)", catalog)
    assert "must return uint8 or float32" in expect("augmentation", "as_float", "returned dtype float64", catalog)


def test_check_component_catches_an_executor_that_loses_a_member(catalog):
    message = expect("executor", "lossy", "run(3 finished jobs) returned 2 result(s)", catalog)
    assert "exactly one MemberResult per job" in message


def test_check_component_catches_a_backbone_that_ignores_num_classes(catalog):
    expect("backbone", "wide", "gave shape (2, 1000)", catalog)


def test_check_component_passes_good_components_and_asks_for_required_parameters(catalog):
    check_component("voter", "soft", registry=catalog)
    check_component("executor", "local", registry=catalog)
    check_component("augmentation", "CenterCrop", {"height": 24, "width": 20}, registry=catalog)
    with pytest.raises(ComponentContractError, match="required parameter.*'height'.*params="):
        check_component("augmentation", "CenterCrop", registry=catalog)


def test_components_and_parametrize_select_by_kind_and_plugin(catalog):
    assert components(plugin=PLUGIN, registry=catalog) == [
        ("backbone", "wide"), ("augmentation", "as_float"), ("augmentation", "grey"), ("loss", "per_sample"),
        ("voter", "median_filling"), ("voter", "median_nocall"), ("executor", "lossy")]
    assert ("voter", "soft") in components("voters", registry=catalog)
    mark = parametrize_components("voter", plugin=PLUGIN, registry=catalog)
    assert mark.args[0] == "kind, name" and [p.id for p in mark.args[1]] == ["voter:median_filling",
                                                                            "voter:median_nocall"]
    with pytest.raises(ValueError, match="no registered component matches"):
        parametrize_components(plugin="no_such_plugin", registry=catalog)


# ---------------------------------------------------------------- before any training
def recipe_with(**fields):
    return {"version": 1, "name": "contract", "split": {"name": "shuffle", "params": {"n_splits": 2}},
            "defaults": {"epochs": 1, "tta": [], "image_size": [32, 32]},
            "tasks": [{"task": "all18", "backbone": "test_resnet"}], **fields}


def test_validate_refuses_a_voter_without_call_and_names_its_plugin(catalog):
    from ensemble_core.recipe import validate

    with pytest.raises(RecipeError) as info:
        validate(recipe_with(voter="median_nocall"), catalog.registry)
    assert info.value.problems == [
        f"voter: voter 'median_nocall' (plugin {PLUGIN}): the built object (MedianVoteWithoutCall) has no __call__; "
        f"a voter must be callable as voter(probs) -> (N, C)"]


def test_validate_refuses_broken_losses_augmentations_and_executors_with_their_field(catalog):
    from ensemble_core.recipe import validate

    bad = recipe_with(executor="lossy", tasks=[{"task": "all18", "backbone": "test_resnet", "loss": "per_sample",
                                                "augmentations": ["HorizontalFlip", "grey"]}])
    with pytest.raises(RecipeError) as info:
        validate(bad, catalog.registry)
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == ["executor", "tasks[0].loss", "tasks[0].augmentations[1]"]
    assert "logits (8, 18)" in problems[1]          # checked at the width of the task's head


def test_a_recipe_with_a_broken_voter_trains_no_member(catalog, demo_dir, tmp_path, monkeypatch):
    """Before the kit every member trained and the run ended in TypeError: 'MedianVote' object is not callable."""
    from ensemble_core.pipeline import run_recipe
    from ensemble_core.manager import set_catalog

    class CountingExecutor:
        jobs = 0

        def run(self, jobs):
            CountingExecutor.jobs += len(jobs)
            raise AssertionError("no member may be trained")

    monkeypatch.setattr("ensemble_core.manager._CATALOG", None)
    set_catalog(catalog)
    out = tmp_path / "run"
    with pytest.raises(RecipeError, match="voter 'median_nocall' .plugin broken_plugin.: .* has no __call__"):
        run_recipe(recipe_with(voter="median_nocall"), data_dir=demo_dir, out_dir=out, quiet=True,
                   executor=CountingExecutor())
    assert CountingExecutor.jobs == 0 and not out.exists()


def test_the_ensemble_command_refuses_a_broken_voter_in_one_line(catalog, demo_dir, tmp_path, monkeypatch, capsys):
    """`ensemble RUN --voter X` runs the contract check `run` runs (recipe.validate_run) before it builds anything:
    one line and exit 1, not a 28-line traceback ending in TypeError: 'MedianVoter' object is not callable."""
    from ensemble_core.cli import main as cli_main
    from ensemble_core.manager import set_catalog
    from ensemble_core.pipeline import run_recipe
    from ensemble_core.runfolder import METRICS_FILE
    from helpers_pipeline import TruthExecutor

    monkeypatch.setattr("ensemble_core.manager._CATALOG", None)
    set_catalog(catalog)
    out = tmp_path / "run"
    run_recipe(recipe_with(), data_dir=demo_dir, out_dir=out, quiet=True, registry=catalog.registry,
               executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    before = (out / METRICS_FILE).read_text()
    capsys.readouterr()
    assert cli_main(["ensemble", str(out), "--voter", "median_nocall", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: recipe "), err
    assert (f"voter: voter 'median_nocall' (plugin {PLUGIN}): the built object (MedianVoteWithoutCall) has no "
            f"__call__") in err
    assert (out / METRICS_FILE).read_text() == before       # nothing was rewritten


def test_predict_refuses_a_run_whose_voter_is_broken_in_one_line(catalog, demo_dir, tmp_path, monkeypatch, capsys):
    """`predict` makes the same contract check first: a finished run whose recipe names a voter that is broken
    here (a plugin upgraded since it trained) is one line naming the voter, before any member predicts."""
    import json

    from ensemble_core.cli import main as cli_main
    from ensemble_core.manager import set_catalog
    from ensemble_core.pipeline import run_recipe
    from ensemble_core.runfolder import RECIPE_FILE
    from helpers_pipeline import TruthExecutor

    monkeypatch.setattr("ensemble_core.manager._CATALOG", None)
    set_catalog(catalog)
    out = tmp_path / "run"
    run_recipe(recipe_with(), data_dir=demo_dir, out_dir=out, quiet=True, registry=catalog.registry,
               executor=TruthExecutor(demo_dir / "eval" / "answers.csv"))
    recipe = json.loads((out / RECIPE_FILE).read_text())
    (out / RECIPE_FILE).write_text(json.dumps({**recipe, "voter": {"name": "median_nocall", "params": {}}}))
    capsys.readouterr()
    assert cli_main(["predict", str(out), str(demo_dir), "--out", str(tmp_path / "pred"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: recipe "), err
    assert f"voter: voter 'median_nocall' (plugin {PLUGIN}): the built object (MedianVoteWithoutCall) has no " in err
    assert not (tmp_path / "pred").exists()


def test_tune_refuses_a_broken_voter_of_its_space_in_one_line_before_any_trial(catalog, demo_dir, tmp_path,
                                                                              monkeypatch, capsys):
    import json

    from ensemble_core.cli import main as cli_main
    from ensemble_core.manager import set_catalog

    pytest.importorskip("optuna")
    monkeypatch.setattr("ensemble_core.manager._CATALOG", None)
    set_catalog(catalog)
    (tmp_path / "recipe.json").write_text(json.dumps(recipe_with()))
    (tmp_path / "space.yaml").write_text("voter.name: {type: categorical, choices: [soft, median_nocall]}\n")
    capsys.readouterr()
    assert cli_main(["tune", str(tmp_path / "recipe.json"), "--space", str(tmp_path / "space.yaml"), "--trials", "2",
                     "--out_dir", str(tmp_path / "out"), "--data_dir", str(demo_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "space field 'voter.name' = 'median_nocall'" in err, err
    assert f"voter 'median_nocall' (plugin {PLUGIN}): the built object (MedianVoteWithoutCall) has no __call__" in err
    assert not (tmp_path / "out" / "trials").exists()


def test_a_member_with_a_backbone_of_the_wrong_width_fails_before_its_first_epoch(catalog, demo_dir, tmp_path):
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.train import train_member
    from helpers_train import person_split, tiny_member

    ds = load_dataset(demo_dir)
    member = tiny_member("mask", backbone="wide")
    run_dir = tmp_path / member.run_name
    with pytest.raises(ComponentContractError) as info:
        train_member(member, ds, person_split(ds.train), run_dir, registry=catalog.registry, quiet=True)
    assert str(info.value).startswith(f"backbone 'wide' (plugin {PLUGIN}): model(images (2, 3, ")
    assert "must give logits (2, 3)" in str(info.value)
    assert not (run_dir / "metrics.jsonl").exists() and not (run_dir / "checkpoints").exists()


def test_a_member_with_a_non_scalar_loss_fails_before_its_first_epoch(catalog, demo_dir, tmp_path):
    from ensemble_core.data.layout import load_dataset
    from ensemble_core.train import train_member
    from helpers_train import person_split, tiny_member

    ds = load_dataset(demo_dir)
    member = tiny_member("mask", loss="per_sample")
    with pytest.raises(ComponentContractError, match=f"^loss 'per_sample' .plugin {PLUGIN}.: loss.logits .8, 3.*"
                                                     f"gave shape .8,."):
        train_member(member, ds, person_split(ds.train), tmp_path / member.run_name, registry=catalog.registry,
                     quiet=True)
    assert not (tmp_path / member.run_name / "metrics.jsonl").exists()


def test_checks_leave_the_global_random_generators_alone(catalog):
    import random

    import torch

    from ensemble_core.recipe import validate

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    check_component("batch_augmentation", "cutmix", registry=catalog)
    validate(recipe_with(tasks=[{"task": "all18", "backbone": "test_resnet",
                                 "augmentations": ["HorizontalFlip", "RandomBrightnessContrast"]}]), catalog.registry)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
