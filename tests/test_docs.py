"""The documentation keeps up with the code (as datasette's tests/test_docs.py does): every hook in
hookspecs.py appears with its arguments in docs/ARCHITECTURE.md, and the list of kinds is the hooks'."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ensemble_core import hookspecs
from ensemble_core.registry import KINDS, REGISTER_PREFIX, kinds_from_hookspecs, plural

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md"


def hooks() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(obj) for name, obj in vars(hookspecs).items()
            if hasattr(obj, f"{hookspecs.PROJECT}_spec")}


def section(title: str) -> str:
    text = ARCHITECTURE.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/ARCHITECTURE.md has no '## {title}' section"
    return "\n" + match.group(1)


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_hook_is_documented_with_its_arguments(name):
    arguments = ", ".join(hooks()[name].parameters)
    assert f"`{name}({arguments})`" in section("Hooks"), \
        f"add `{name}({arguments})` to the Hooks section of docs/ARCHITECTURE.md"


def test_the_hooks_section_names_no_hook_that_does_not_exist():
    documented = set(re.findall(r"`(ensemble_\w+)\(", section("Hooks")))
    assert documented == set(hooks())


def test_kinds_are_the_register_hooks():
    register = [name for name in hooks() if name.startswith(REGISTER_PREFIX)]
    assert [f"{REGISTER_PREFIX}{plural(kind)}" for kind in KINDS] == register
    assert kinds_from_hookspecs() == KINDS and len(set(KINDS)) == len(KINDS)


def test_a_new_register_hook_is_a_new_kind():
    import types

    module = types.ModuleType("more_hookspecs")
    vars(module).update({name: getattr(hookspecs, name) for name in hooks()})

    @hookspecs.hookspec
    def ensemble_register_samplers():
        """Samplers."""

    @hookspecs.hookspec
    def ensemble_register_metrics_losses():
        """A plural ending in -es."""

    module.ensemble_register_samplers = ensemble_register_samplers
    module.ensemble_register_metrics_losses = ensemble_register_metrics_losses
    assert kinds_from_hookspecs(module) == KINDS + ("sampler", "metrics_loss")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_its_factory_signature_and_contract_check_documented(kind):
    assert f"\n- {kind}: `factory(" in section("Component factory signatures (engine-supplied leading args are not "
                                              "recipe params)")
    assert f"\n| {kind} | " in section("Testing your plugin")


def test_registry_imports_hookspecs_without_a_cycle():
    for first in ("ensemble_core.registry", "ensemble_core.hookspecs", "ensemble_core.contracts"):
        proc = subprocess.run([sys.executable, "-c", f"import {first}; import ensemble_core.registry as r; "
                                                     f"print(len(r.KINDS))"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip() == str(len(KINDS)), proc.stderr


def test_every_docs_file_that_the_code_and_the_docs_point_to_is_in_the_repository():
    """Issue 28: `fire recipes/full.py --help` pointed to docs/SEED.md, which was not in the repository."""
    repo = ARCHITECTURE.parents[1]
    files = [repo / "README.md", *repo.glob("docs/*.md"), *repo.glob("ensemble_core/**/*.py"),
             *repo.glob("recipes/*.py"), *repo.glob("plugins/*.py"), *repo.glob("benchmarks/*.py"),
             *repo.glob("benchmarks/*.md"), *repo.glob("examples/**/*.md"), *repo.glob("examples/**/*.py")]
    named = {(f.relative_to(repo), m) for f in files for m in re.findall(r"\bdocs/[\w.-]+\.md", f.read_text())}
    assert len(named) > 10
    missing = sorted(f"{f}: {m}" for f, m in named if not (repo / m).is_file())
    assert not missing, missing


def test_the_fire_command_the_readme_runs_is_ensemble_cores_own_console_script():
    import tomllib

    scripts = tomllib.loads((ARCHITECTURE.parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["fire"] == "ensemble_core.fire_main:main"
    readme = (ARCHITECTURE.parents[1] / "README.md").read_text()
    main_command = readme.split("## The main command", 1)[1].split("\n## ", 1)[0]
    assert "`ensemble_core.fire_main`" in main_command and "python -m ensemble_core.fire_main" in main_command
