"""Shared fixtures: tiny synthetic demo data (built once per session) and, when the shared
folder is there, the maskproxy data set (built once into /tmp/maskproxy and reused).

The demo folder is shared by every test in the session, so no test may change it (a test that
needs to damage or extend the data works on ``helpers_data.copy_demo(demo_dir, tmp_path)``): after
each test that used it, ``shared_demo_is_untouched`` checks that every file is still there with the
same size and modification time, and fails naming the test otherwise. The suite must pass in any
order (``python -m pytest -p random_order --random-order``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MASKPROXY_SRC = SHARED / "datasets" / "maskproxy"
MASKPROXY_OUT = Path(os.environ.get("MASKPROXY_DIR", "/tmp/maskproxy"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers_data import DEMO_KWARGS, tree_state  # noqa: E402


_SHARED_DEMO: dict[Path, list] = {}


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    from ensemble_core.data.demo import make_demo
    path = make_demo(tmp_path_factory.mktemp("demo"), **DEMO_KWARGS)
    _SHARED_DEMO[path] = tree_state(path)
    return path


@pytest.fixture(autouse=True)
def shared_demo_is_untouched(request):
    yield
    if "demo_dir" not in request.fixturenames:
        return
    for path, before in _SHARED_DEMO.items():
        assert tree_state(path) == before, (
            f"{request.node.nodeid} changed the shared demo folder {path} (every later test would see other "
            f"data); write into a copy: helpers_data.copy_demo(demo_dir, tmp_path)")


def _maskproxy_complete(root: Path) -> bool:
    # build.py writes train.csv, then eval/info.csv and eval/answers.csv last
    return (root / "train" / "train.csv").is_file() and (root / "eval" / "answers.csv").is_file()


@pytest.fixture(scope="session")
def maskproxy_dir() -> Path:
    if _maskproxy_complete(MASKPROXY_OUT):
        return MASKPROXY_OUT
    if not (MASKPROXY_SRC / "build.py").is_file():
        pytest.skip(f"maskproxy needs {MASKPROXY_SRC} (the shared folder next to the repository)")
    tmp = MASKPROXY_OUT.with_name(f"{MASKPROXY_OUT.name}.building-{os.getpid()}")
    subprocess.run([sys.executable, str(MASKPROXY_SRC / "build.py"), str(MASKPROXY_SRC / "source"), str(tmp)],
                   check=True, capture_output=True)
    if not MASKPROXY_OUT.exists():
        os.replace(tmp, MASKPROXY_OUT)
        return MASKPROXY_OUT
    if _maskproxy_complete(MASKPROXY_OUT):  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        return MASKPROXY_OUT
    return tmp  # an incomplete build is in the way: use ours where it is
