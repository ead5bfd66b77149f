"""Plugin manager: built-ins via hooks, entry points (faked as pytest does), autoload switch, typos."""
import sys
import types
from importlib import metadata

import pytest

from ensemble_core import ComponentSpec, hookimpl
from ensemble_core.errors import DuplicateComponentError
from ensemble_core.manager import BUILTIN_MODULES, DISABLE_ENV, PluginError, build_catalog


class FakeEntryPoint:
    def __init__(self, name, plugin):
        self.name, self.value, self.group, self._plugin = name, f"{name}:plugin", "ensemble_core", plugin
        self.dist = types.SimpleNamespace(name="fake-dist", version="9.9")

    def load(self):
        return self._plugin


def make_plugin(loss_name="fake_loss"):
    plugin = types.ModuleType("fake_plugin")

    @hookimpl
    def ensemble_register_losses():
        return [ComponentSpec(loss_name, "loss", "ensemble_core.registry:import_object", "a fake loss")]

    plugin.ensemble_register_losses = ensemble_register_losses
    return plugin


@pytest.fixture
def fake_entry_points(monkeypatch):
    eps = []

    def entry_points(group=None, **kw):
        return [ep for ep in eps if group in (None, ep.group)]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    return eps


def test_builtins_register_through_hooks():
    cat = build_catalog(autoload=False)
    for mod in BUILTIN_MODULES:
        assert cat.sources[mod] == "built-in"
        assert cat.pm.get_plugin(mod) is not None
    origins = {s.origin for s in cat.registry.all()}
    assert origins <= set(BUILTIN_MODULES)


def test_entry_point_plugin_is_discovered(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("fakeplug", make_plugin()))
    cat = build_catalog()
    spec = cat.registry["loss"].get("fake_loss")
    assert spec.origin == "fakeplug"
    assert "fake-dist 9.9" in cat.sources["fakeplug"]


def test_autoload_can_be_disabled(fake_entry_points, monkeypatch):
    fake_entry_points.append(FakeEntryPoint("fakeplug", make_plugin()))
    monkeypatch.setenv(DISABLE_ENV, "1")
    cat = build_catalog()
    assert "fake_loss" not in cat.registry["loss"]
    assert "fakeplug" not in cat.sources


def test_misspelled_hook_fails_fast():
    plugin = types.ModuleType("typo_plugin")

    @hookimpl
    def ensemble_register_lossez():
        return []

    plugin.ensemble_register_lossez = ensemble_register_lossez
    with pytest.raises(PluginError) as err:
        build_catalog([plugin], autoload=False)
    assert "ensemble_register_lossez" in str(err.value)
    assert "ensemble_register_losses" in str(err.value)


def test_duplicate_across_plugins_names_both(fake_entry_points):
    fake_entry_points.append(FakeEntryPoint("one", make_plugin("dup_loss")))
    fake_entry_points.append(FakeEntryPoint("two", make_plugin("dup_loss")))
    with pytest.raises(DuplicateComponentError) as err:
        build_catalog()
    assert "one" in str(err.value) and "two" in str(err.value)


def test_broken_entry_point_names_its_package(fake_entry_points):
    class Broken(FakeEntryPoint):
        def load(self):
            raise ImportError("no module named nowhere")

    fake_entry_points.append(Broken("broken", None))
    with pytest.raises(PluginError) as err:
        build_catalog()
    assert "fake-dist 9.9" in str(err.value) and DISABLE_ENV in str(err.value)


def test_wrong_kind_from_hook_is_reported():
    plugin = types.ModuleType("wrong_kind")

    @hookimpl
    def ensemble_register_voters():
        return [ComponentSpec("oops", "loss", "x:y")]

    plugin.ensemble_register_voters = ensemble_register_voters
    with pytest.raises(PluginError, match="ensemble_register_losses"):
        build_catalog([plugin], autoload=False)
