"""ensemble_extra: an example third-party plugin package for ensemble_core."""
