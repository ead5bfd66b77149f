"""Built-in executors: how planned members get trained (``--executor local|process|ray``).

The contract (:class:`ensemble_core.executors.Executor`, picklable
:class:`ensemble_core.executors.MemberJob`) lets another plugin add more.
Factories are lazy ``"module:attr"`` strings: listing them imports neither torch nor Ray.
"""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec


@hookimpl
def ensemble_register_executors():
    return [
        ComponentSpec("local", "executor", "ensemble_core.executors:LocalExecutor",
                      "train members one after the other in this process (skips members whose DONE exists)"),
        ComponentSpec("process", "executor", "ensemble_core.executors.process:ProcessExecutor",
                      "a pool of spawned worker processes, one per GPU (CUDA_VISIBLE_DEVICES) or per CPU slot"),
        ComponentSpec("ray", "executor", "ensemble_core.executors.ray:RayExecutor",
                      "one Ray task per member with its CPU/GPU request; local Ray or --ray_address "
                      "(needs the ray extra)"),
    ]
