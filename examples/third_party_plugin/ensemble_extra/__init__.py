"""ensemble_extra: an example third-party plugin package for ensemble_core (the template README.md walks)."""
