"""The layers of docs/ARCHITECTURE.md hold: import-linter's contracts (pyproject.toml) are kept, and tests share
code only through tests/helpers_*.py."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                                                                      "lint_imports_command()"]
    done = subprocess.run(cmd + ["--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_a_deliberate_upward_import_breaks_the_layers(tmp_path):
    """The contracts are not vacuous: data/ importing the pipeline is reported."""
    pytest.importorskip("importlinter")
    import grimp
    from importlinter.contracts.layers import LayersContract  # noqa: F401  (the contract type we rely on)

    graph = grimp.build_graph("ensemble_core")
    assert not graph.find_shortest_chain(importer="ensemble_core.data.layout", imported="ensemble_core.pipeline")
    graph.add_import(importer="ensemble_core.data.layout", imported="ensemble_core.pipeline", line_number=1,
                     line_contents="from ensemble_core.pipeline import run_recipe")
    layers = [("ensemble_core.pipeline",), ("ensemble_core.data",)]
    illegal = graph.find_illegal_dependencies_for_layers(layers=[grimp.Layer(*m) for m in layers])
    assert illegal, "an upward import data -> pipeline must be illegal"


def test_train_and_ensemble_never_import_each_other():
    import grimp

    graph = grimp.build_graph("ensemble_core")
    for a, b in (("ensemble_core.train", "ensemble_core.ensemble"), ("ensemble_core.ensemble", "ensemble_core.train")):
        chains = graph.find_shortest_chains(importer=a, imported=b, as_packages=True)
        assert not chains, f"{a} imports {b}: {chains}"


def test_tests_share_code_only_through_helpers_modules():
    """A test module never imports another test module; shared fixtures and builders live in helpers_*.py."""
    offenders = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.name}: imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert not offenders, offenders
