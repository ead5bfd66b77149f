"""Built-in plugins of ensemble_core, installed as the package ``ensemble_core_plugins``.

Each module is a plugin written exactly as a third-party one would be: it
implements ``ensemble_register_<kind>s()`` hooks and returns ComponentSpecs
whose factories are lazy ``"module:attr"`` strings, so listing never imports
torch.
"""
