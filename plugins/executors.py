"""Built-in executors: how planned members get trained.

The contract (:class:`ensemble_core.executors.Executor`, picklable
:class:`ensemble_core.executors.MemberJob`) lets a process-pool or Ray
executor be added by another plugin.
"""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


@hookimpl
def ensemble_register_executors():
    return [
        ComponentSpec("local", "executor", "ensemble_core.executors:LocalExecutor",
                      "train members one after the other in this process (skips members whose DONE exists)"),
    ]
