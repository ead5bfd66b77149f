"""Packaging: every engine subpackage is declared (the explicit list in pyproject would silently miss one)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_declared():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ensemble_core").rglob("__init__.py")}
    assert found - declared == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "ensemble_core_plugins" in declared
    assert config["tool"]["setuptools"]["package-dir"]["ensemble_core_plugins"] == "plugins"


def test_console_scripts_exist():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = config["project"]["scripts"]
    assert scripts["ensemble-core"] == "ensemble_core.cli:main"
    assert scripts["fire"] == "ensemble_core.fire_main:main"
