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


def test_misspelled_hook_of_an_entry_point_names_the_close_match_and_the_autoload_switch(fake_entry_points):
    """Issue 28: `ensemble_register_voter` stopped every command with only the list of all hooks."""
    plugin = types.ModuleType("ensemble_extra.plugin")
    plugin.__file__ = "/site/ensemble_extra/plugin.py"

    @hookimpl
    def ensemble_register_voter():
        return []

    plugin.ensemble_register_voter = ensemble_register_voter
    fake_entry_points.append(FakeEntryPoint("ensemble_extra", plugin))
    with pytest.raises(PluginError) as err:
        build_catalog()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("plugin 'ensemble_extra' (entry point ensemble_extra:plugin (fake-dist 9.9); "
                              "/site/ensemble_extra/plugin.py) implements the unknown hook 'ensemble_register_voter'. "
                              "Did you mean 'ensemble_register_voters'? Rename the function."), message
    assert f"{DISABLE_ENV}=1 skips entry-point plugins" in message
    assert "Known hooks" not in message        # the close match, not all of them


def test_hook_suggestions_come_from_the_live_hook_specifications(monkeypatch):
    """A hook added to hookspecs.py (issue 26 adds ensemble_register_weights) is suggested without a list to update."""
    from ensemble_core import hookspecs, manager

    @hookspecs.hookspec
    def ensemble_register_samplers():
        """Samplers."""

    real = manager.new_plugin_manager

    def with_samplers():
        pm = real()
        pm.add_hookspecs(types.SimpleNamespace(ensemble_register_samplers=ensemble_register_samplers))
        return pm

    monkeypatch.setattr(manager, "new_plugin_manager", with_samplers)
    plugin = types.ModuleType("sampler_plugin")

    @hookimpl
    def ensemble_register_sampler():
        return []

    plugin.ensemble_register_sampler = ensemble_register_sampler
    with pytest.raises(PluginError, match="Did you mean 'ensemble_register_samplers'"):
        build_catalog([plugin], autoload=False)


@pytest.mark.parametrize("name", ["ensemble_register_voters", "ensemble_register_voter"])
def test_a_hook_named_function_without_hookimpl_is_named_not_ignored(fake_entry_points, name):
    """Without @hookimpl pluggy ignores the function and the run later said only "unknown voter 'median'"."""
    plugin = types.ModuleType("ensemble_extra.plugin")
    plugin.__file__ = "/site/ensemble_extra/plugin.py"
    setattr(plugin, name, lambda: [ComponentSpec("median", "voter", "x:y")])
    fake_entry_points.append(FakeEntryPoint("ensemble_extra", plugin))
    with pytest.raises(PluginError) as err:
        build_catalog()
    message = str(err.value)
    assert "\n" not in message and "/site/ensemble_extra/plugin.py" in message
    assert f"defines {name}() named like the hook 'ensemble_register_voters'" in message
    assert "not marked @hookimpl" in message and "`@hookimpl` above `def ensemble_register_voters`" in message
    assert f"{DISABLE_ENV}=1" in message
    assert ("(misspelt)" in message) == (name != "ensemble_register_voters")


def test_a_hook_with_arguments_its_specification_lacks_is_one_line(fake_entry_points):
    plugin = types.ModuleType("resolver")

    @hookimpl
    def ensemble_resolve_component(kind, nmae):
        return None

    plugin.ensemble_resolve_component = ensemble_resolve_component
    fake_entry_points.append(FakeEntryPoint("resolver", plugin))
    with pytest.raises(PluginError, match=r"^plugin 'resolver' \(entry point resolver:plugin \(fake-dist 9.9\)\): .*"
                                          r"nmae.*docs/ARCHITECTURE.md \(Hooks\)$"):
        build_catalog()


def test_the_misspelled_hook_stops_list_with_one_line_and_the_switch_gets_it_working(tmp_path):
    """As a plugin author meets it: an installed package (dist-info + entry point on PYTHONPATH) with a misspelt hook."""
    import os
    import subprocess

    from helpers_proc import SUBPROCESS_DEADLINE_S

    pkg = tmp_path / "typo_extra"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text("from ensemble_core import hookimpl\n\n@hookimpl\n"
                                   "def ensemble_register_voter():\n    return []\n")
    dist = tmp_path / "typo_extra-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-extra\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ensemble_core]\ntypo_extra = typo_extra.plugin\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env.pop(DISABLE_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "ensemble_core", "list", "losses"], capture_output=True, text=True,
                          env=env, timeout=SUBPROCESS_DEADLINE_S)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Did you mean 'ensemble_register_voters'?" in proc.stderr and f"{DISABLE_ENV}=1" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "ensemble_core", "list", "losses"], capture_output=True, text=True,
                          env={**env, DISABLE_ENV: "1"}, timeout=SUBPROCESS_DEADLINE_S)
    assert proc.returncode == 0 and "cross_entropy" in proc.stdout, proc.stderr
