"""Deadlines for the subprocesses tests start. They are generous on purpose: the tests run on shared
2-core machines where a loaded CPU can make a run many times slower than on an idle one. A deadline
only stops a hung test; how fast something is belongs in benchmarks/, never in an assert."""
from __future__ import annotations

import os

# whole command (a training run, a benchmark at tiny size, a CLI call)
SUBPROCESS_DEADLINE_S = int(os.environ.get("ENSEMBLE_CORE_TEST_DEADLINE_S", "900"))
# waiting for something a running subprocess writes (its first checkpoint, a marker file)
WAIT_DEADLINE_S = int(os.environ.get("ENSEMBLE_CORE_TEST_WAIT_S", "600"))
