"""ensemble_core: plugin-based ensemble orchestration for factorized-label image classification.

Importing this package is cheap: torch, timm and albumentations are imported
only when a component is built.
"""
from ensemble_core.errors import (ComponentContractError, DataError, DuplicateComponentError, EnsembleCoreError,
                                  RecipeError, TrainingError, UnknownComponentError)
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

__version__ = "0.1.0"
__all__ = ["ComponentSpec", "hookimpl", "EnsembleCoreError", "RecipeError", "DataError", "TrainingError",
           "UnknownComponentError", "DuplicateComponentError", "ComponentContractError", "__version__"]
