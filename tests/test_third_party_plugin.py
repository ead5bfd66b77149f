"""The plugin template in examples/third_party_plugin, as a plugin author uses it: pip installs it into a fresh
virtualenv (its entry point is all the integration there is), ensemble_core finds it, the template's own tests
(the public contract kit) pass from that install, and a tiny demo run trains with its components.

The virtualenv is cheap on purpose: it is made without pip on top of this interpreter's packages (a ``.pth``
file adds this environment's site-packages, so torch & co. are not reinstalled), and the template is installed
with this environment's pip, ``--no-deps`` (ensemble_core is already importable) and, when setuptools is here,
``--no-index --no-build-isolation`` (no network; else pip fetches setuptools from the package registry)."""
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers_proc import SUBPROCESS_DEADLINE_S

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "third_party_plugin"
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
DISABLE_ENV = "ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD"


class FreshEnv:
    def __init__(self, root: Path):
        self.root, self.python, self.plugin = root, root / "env" / "bin" / "python", root / "my_plugin"
        self.env = {k: v for k, v in os.environ.items() if k != DISABLE_ENV}

    def run(self, *args, cwd=None, env=None, check=True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.python), *map(str, args)], cwd=cwd or self.root, env=env or self.env,
                              capture_output=True, text=True, timeout=SUBPROCESS_DEADLINE_S)
        if check:
            assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    env = FreshEnv(tmp_path_factory.mktemp("fresh-venv"))
    venv.create(env.root / "env", with_pip=False)
    purelib = env.run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "_on_top_of_the_test_environment.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in site.getsitepackages()) + "\n")
    # the template as a plugin author copies it (its build files stay out of the repository)
    shutil.copytree(EXAMPLE, env.plugin, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache"))
    offline = ["--no-index", "--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    env.run("-m", "pip", "install", "-q", "--no-deps", *offline, "-e", env.plugin)
    return env


def test_the_template_is_installed_into_the_fresh_environment_not_this_one(fresh):
    where = fresh.run("-c", "import ensemble_extra, sys; print(ensemble_extra.__file__); print(sys.prefix)").stdout
    assert str(fresh.plugin) in where and str(fresh.root / "env") in where
    assert importlib.util.find_spec("ensemble_extra") is None       # the test environment itself stays clean


def test_plugins_list_and_show_find_the_template_through_its_entry_point(fresh):
    plugins = fresh.run("-m", "ensemble_core", "plugins").stdout
    assert "ensemble_extra  (entry point ensemble_extra.plugin (ensemble-extra 0.1.0); 5 component(s))" in plugins
    listed = fresh.run("-m", "ensemble_core", "list").stdout
    for name in ("tiny_cnn", "random_grey", "poly1_cross_entropy", "median", "team_folder"):
        assert any(name in line and "[ensemble_extra]" in line for line in listed.splitlines()), name
    shown = fresh.run("-m", "ensemble_core", "show", "loss", "poly1_cross_entropy").stdout
    assert "origin:  ensemble_extra" in shown and "epsilon" in shown


def test_the_autoload_switch_hides_the_template(fresh):
    listed = fresh.run("-m", "ensemble_core", "list", "voters", env={**fresh.env, DISABLE_ENV: "1"}).stdout
    assert "soft" in listed and "median" not in listed


def test_the_templates_own_tests_pass_from_its_fresh_install(fresh):
    """The template's tests use ensemble_core.testing (parametrize_components + check_component) as its author would."""
    proc = fresh.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=fresh.plugin)
    assert "11 passed" in proc.stdout, proc.stdout[-2000:]


def test_a_tiny_demo_run_trains_with_the_templates_components(fresh, demo_dir, tmp_path):
    """README "Writing a plugin", step 5: a stock recipe with the plugin's backbone, augmentation, loss and voter."""
    out = tmp_path / "run"
    fresh.run("-m", "ensemble_core.fire_main", RECIPES / "single18.py", "run", "--data_dir", demo_dir,
              "--out_dir", out, "--preset", "small", "--voter=median", "--tasks.0.backbone=tiny_cnn",
              "--tasks.0.loss=poly1_cross_entropy", "--tasks.0.augmentations=[random_grey]",
              "--defaults.epochs=1", "--split.params.n_splits=2", "--quiet")
    configs = [json.loads(p.read_text()) for p in sorted(out.glob("members/*/config.json"))]
    assert len(configs) == 2
    for config in configs:
        member, fields = config["member"], config["member"]["fields"]
        assert member["backbone"]["name"] == "tiny_cnn" and fields["loss"]["name"] == "poly1_cross_entropy"
        assert [a["name"] for a in fields["augmentations"]] == ["random_grey"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["voter"]["name"] == "median" and metrics["oof"]["n_images"] > 0
    report = (out / "report.md").read_text()
    assert "- voter: `median`" in report and "| all18 | 2 | median |" in report


@pytest.fixture
def catalog_with_example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import importlib
    from ensemble_core.manager import build_catalog
    plugin = importlib.import_module("ensemble_extra.plugin")
    return build_catalog([plugin], autoload=False)


def test_a_median_voter_without_call_is_refused_by_validate(catalog_with_example, monkeypatch):
    """The issue's failure: with __call__ missing, every member trained and the run ended in
    `TypeError: 'MedianVote' object is not callable`. Now validate refuses the recipe, naming the plugin."""
    from ensemble_core.errors import RecipeError
    from ensemble_core.recipe import validate
    from ensemble_extra import voters

    monkeypatch.delattr(voters.MedianVote, "__call__")
    with pytest.raises(RecipeError) as info:
        validate({"version": 1, "name": "extra", "voter": "median",
                  "tasks": [{"task": "mask", "backbone": "resnet18"}]}, catalog_with_example.registry)
    assert info.value.problems == [
        "voter: voter 'median' (plugin ensemble_extra.plugin): the built object (MedianVote) has no __call__; "
        "a voter must be callable as voter(probs) -> (N, C)"]
