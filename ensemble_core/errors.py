"""Exceptions raised by ensemble_core. Each message names the thing that is wrong and the fix."""
from __future__ import annotations


class EnsembleCoreError(Exception):
    """Base class for every error ensemble_core raises on purpose."""


class UnknownComponentError(EnsembleCoreError, KeyError):
    """A component name that no plugin registered."""

    def __init__(self, kind: str, name: str, suggestions: list[str], field: str | None = None):
        self.kind, self.name, self.suggestions, self.field = kind, name, suggestions, field
        where = f" (recipe field {field!r})" if field else ""
        hint = f" Did you mean: {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        kinds = kind + "es" if kind.endswith("s") else kind + "s"
        msg = (f"unknown {kind} {name!r}{where}.{hint} "
               f"Run `python -m ensemble_core list {kinds}` to see every registered {kind}.")
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DuplicateComponentError(EnsembleCoreError):
    """Two plugins registered the same (kind, name)."""


class RecipeError(EnsembleCoreError):
    """A recipe failed validation; ``problems`` holds every problem found."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        head = f"recipe {source} is invalid" if source else "recipe is invalid"
        if len(self.problems) == 1:   # one problem: one line
            super().__init__(f"{head}: {self.problems[0]}")
            return
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{body}")


class ComponentParamsError(RecipeError):
    """A component reference whose parameters do not fit its factory (unknown or missing parameters)."""


class ComponentContractError(EnsembleCoreError):
    """A registered component breaks the contract of its kind (``ensemble_core.contracts``): one line naming
    the kind, the component, its plugin and what is missing or wrong."""

    def __init__(self, kind: str, name: str, origin: str, what: str):
        self.kind, self.name, self.origin, self.what = kind, name, origin, what
        super().__init__(f"{kind} {name!r} (plugin {origin or 'unknown'}): {what}")


class OverrideError(EnsembleCoreError):
    """A command-line flag or dotted override that does not fit (unknown flag, bad path, bad value)."""


class DataError(EnsembleCoreError):
    """The data set on disk is missing, malformed or inconsistent."""


class TrainingError(EnsembleCoreError):
    """Training a member failed in a way the user must fix (non-finite loss, missing weights)."""


def error_line(exc: BaseException) -> str:
    """What every command-line entry point prints (after ``error: ``) for an error the user must fix."""
    return os_error_message(exc) if isinstance(exc, OSError) else str(exc)


def is_disk_full(exc: BaseException) -> bool:
    """A write failed because the disk (or the user's quota) is full: retrying on the same disk fails the same
    way, so such a failure is reported at once (one line naming the file) and never retried."""
    import errno
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system failure (read-only folder, full disk, missing permission): the
    path, what happened and the fix; what the command-line entry points print instead of a traceback."""
    import errno

    path = exc.filename if exc.filename is not None else "a file"
    what = exc.strerror or str(exc)
    fixes = {
        errno.ENOSPC: "free disk space there (or choose another output folder: --out_dir / --out) and run the "
                      "same command again; the files written before are intact and finished members are kept",
        errno.EDQUOT: "free space in your quota (or choose another output folder: --out_dir / --out) and run the "
                      "same command again",
        errno.EROFS: "the file system is read-only: choose a writable --out_dir",
        errno.EACCES: "you lack permission there: fix the folder's permissions or choose another --out_dir",
        errno.EPERM: "the operation is not permitted there: fix the permissions or choose another --out_dir",
        errno.ENOENT: "the path does not exist: check it",
        errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
        errno.EISDIR: "the path is a folder where a file was expected: check the path",
        errno.EEXIST: "a file is there where a folder was expected: choose another folder (e.g. --out / --out_dir)",
    }
    fix = fixes.get(exc.errno, "check the path and the disk, then run the same command again")
    return f"{path}: {what}; {fix}"
