"""Built-in backbones (placeholder until implemented)."""
from ensemble_core.hookspecs import hookimpl  # noqa: F401
