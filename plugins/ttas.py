"""Built-in ttas (placeholder until implemented)."""
from ensemble_core.hookspecs import hookimpl  # noqa: F401
