"""The example package in examples/third_party_plugin is discovered through its entry point and usable in recipes.

Discovery is tested for real: a dist-info folder with the package's
entry_points.txt is put on PYTHONPATH, exactly what `pip install` leaves behind,
and `python -m ensemble_core plugins` must find it.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers_proc import SUBPROCESS_DEADLINE_S

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "third_party_plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    dist = site / "ensemble_extra-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ensemble-extra\nVersion: 0.1.0\n")
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    line = next(l for l in pyproject.splitlines() if l.startswith("ensemble_extra ="))
    (dist / "entry_points.txt").write_text("[ensemble_core]\n" + line.replace('"', "") + "\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(EXAMPLE), env.get("PYTHONPATH", "")])
    env.pop("ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD", None)
    return env


def test_plugins_command_shows_example(installed_example):
    proc = subprocess.run([sys.executable, "-m", "ensemble_core", "plugins"], capture_output=True, text=True,
                          env=installed_example, timeout=SUBPROCESS_DEADLINE_S)
    assert proc.returncode == 0, proc.stderr
    assert "ensemble_extra  (entry point ensemble_extra.plugin (ensemble-extra 0.1.0); 2 component(s))" \
        in proc.stdout


def test_components_listed_with_origin(installed_example):
    proc = subprocess.run([sys.executable, "-m", "ensemble_core", "list", "voters"], capture_output=True,
                          text=True, env=installed_example, timeout=SUBPROCESS_DEADLINE_S)
    assert "median" in proc.stdout and "[ensemble_extra]" in proc.stdout


def test_autoload_switch_hides_example(installed_example):
    env = dict(installed_example, ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run([sys.executable, "-m", "ensemble_core", "list", "voters"], capture_output=True,
                          text=True, env=env, timeout=SUBPROCESS_DEADLINE_S)
    assert "median" not in proc.stdout


def test_example_plugins_own_contract_tests_pass(installed_example):
    """examples/third_party_plugin/tests use ensemble_core.testing on the installed plugin, as its author would."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=EXAMPLE,
                          capture_output=True, text=True, env=installed_example, timeout=SUBPROCESS_DEADLINE_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "5 passed" in proc.stdout, proc.stdout[-2000:]


def test_a_median_voter_without_call_is_refused_by_validate(catalog_with_example, monkeypatch):
    """The issue's failure: with __call__ missing, every member trained and the run ended in
    `TypeError: 'MedianVote' object is not callable`. Now validate refuses the recipe, naming the plugin."""
    from ensemble_core.errors import RecipeError
    from ensemble_core.recipe import validate
    from ensemble_extra import components

    monkeypatch.delattr(components.MedianVote, "__call__")
    with pytest.raises(RecipeError) as info:
        validate({"version": 1, "name": "extra", "voter": "median",
                  "tasks": [{"task": "mask", "backbone": "resnet18"}]}, catalog_with_example.registry)
    assert info.value.problems == [
        "voter: voter 'median' (plugin ensemble_extra.plugin): the built object (MedianVote) has no __call__; "
        "a voter must be callable as voter(probs) -> (N, C)"]


@pytest.fixture
def catalog_with_example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import importlib
    from ensemble_core.manager import build_catalog
    plugin = importlib.import_module("ensemble_extra.plugin")
    return build_catalog([plugin], autoload=False)


def test_recipe_can_use_example_components(catalog_with_example):
    import torch
    from ensemble_core.recipe import validate

    reg = catalog_with_example.registry
    recipe = validate({"version": 1, "name": "extra", "voter": "median",
                       "tasks": [{"task": "mask", "backbone": "resnet18",
                                  "loss": {"name": "poly1_cross_entropy", "params": {"epsilon": 2.0}}}]}, reg)
    member = recipe.plan()[0]
    loss = reg.build("loss", member.fields["loss"]["name"], **member.fields["loss"]["params"])
    logits = torch.randn(4, 3, requires_grad=True)
    value = loss(logits, torch.tensor([0, 1, 2, 0]))
    value.backward()
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0]))
    assert value.item() > ce.item() and logits.grad is not None

    voter = reg.build("voter", recipe.voter)
    probs = np.array([[[0.8, 0.1, 0.1]], [[0.6, 0.3, 0.1]], [[np.nan] * 3]])
    out = voter.fit(probs, np.array([0]))(probs)
    np.testing.assert_allclose(out, [[0.7 / 1.0, 0.2, 0.1]], rtol=1e-6)
