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
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{body}")


class DataError(EnsembleCoreError):
    """The data set on disk is missing, malformed or inconsistent."""


class TrainingError(EnsembleCoreError):
    """Training a member failed in a way the user must fix (non-finite loss, missing weights)."""
