"""Registry: lookup, wildcard listing, did-you-mean, duplicates, parameter binding."""
import pytest

from ensemble_core.errors import DuplicateComponentError, UnknownComponentError
from ensemble_core.registry import ComponentSpec, Registry


def make_loss(alpha: float = 1.0, gamma: float = 2.0):
    return ("loss", alpha, gamma)


def make_optimizer(parameters, lr: float, momentum: float = 0.0):
    return ("opt", parameters, lr, momentum)


@pytest.fixture
def registry():
    reg = Registry()
    reg.add(ComponentSpec("focal", "loss", make_loss, "focal loss", origin="a"))
    reg.add(ComponentSpec("soft_f1", "loss", make_loss, "soft f1", origin="a"))
    reg.add(ComponentSpec("cross_entropy", "loss", "tests.test_registry:make_loss", "lazy ce", origin="b"))
    reg.add(ComponentSpec("sgd", "optimizer", make_optimizer, "sgd", origin="a"))
    return reg


def test_get_returns_spec_and_builds(registry):
    spec = registry["loss"].get("focal")
    assert spec.origin == "a"
    assert spec.build(alpha=0.5) == ("loss", 0.5, 2.0)


def test_lazy_string_factory_is_imported_on_build(registry):
    assert registry.build("loss", "cross_entropy", gamma=3.0) == ("loss", 1.0, 3.0)


def test_unknown_name_suggests_close_matches(registry):
    with pytest.raises(UnknownComponentError) as err:
        registry["loss"].get("sotf_f1", field="tasks[0].loss")
    msg = str(err.value)
    assert "soft_f1" in msg and "tasks[0].loss" in msg and "list losses" in msg
    assert err.value.suggestions[0] == "soft_f1"


def test_list_with_wildcards_and_substrings(registry):
    assert [s.name for s in registry["loss"].list("*f1")] == ["soft_f1"]
    assert [s.name for s in registry["loss"].list("so?t*")] == ["soft_f1"]
    assert [s.name for s in registry["loss"].list("entropy")] == ["cross_entropy"]
    assert [s.name for s in registry["loss"].list()] == ["cross_entropy", "focal", "soft_f1"]


def test_duplicate_name_names_both_origins(registry):
    with pytest.raises(DuplicateComponentError) as err:
        registry.add(ComponentSpec("focal", "loss", make_loss, "again", origin="pkg_b"))
    message = str(err.value)
    assert message.startswith("loss 'focal' is registered twice: by a and by pkg_b.")   # both origins, in order
    assert "Rename one, or disable one plugin" in message and "ENSEMBLE_CORE_DISABLE_PLUGIN_AUTOLOAD=1" in message
    assert registry["loss"].get("focal").description == "focal loss"                   # the first one is kept


def test_plural_kind_lookup_and_unknown_kind(registry):
    assert registry["losses"].kind == "loss"
    with pytest.raises(UnknownComponentError) as err:
        registry["lossess"]
    assert "losses" in str(err.value)


def test_bind_reports_unknown_and_missing_params(registry):
    spec = registry["optimizer"].get("sgd")
    problems = spec.bind({"lr": 0.1, "momentun": 0.9})
    assert len(problems) == 1
    assert "'momentun'" in problems[0] and "'momentum'" in problems[0] and "Valid names: lr, momentum" in problems[0]
    problems = spec.bind({})
    assert problems == ["missing required parameter 'lr' for optimizer 'sgd'"]


def make_backbone(num_classes, pretrained: bool = False, drop_rate: float = 0.0, depth: int = 2,
                  drop_path_rate: float | None = None, note: str = ""):
    return num_classes


def test_bind_refuses_a_string_where_a_flag_or_number_belongs():
    # fire reads --x='{pretrained: false}' as the string 'false', which would read as true
    spec = ComponentSpec("net", "backbone", make_backbone)
    assert spec.bind({"pretrained": False, "drop_rate": 1, "depth": 3, "drop_path_rate": None, "note": "x"}) == []
    problems = spec.bind({"pretrained": "false", "drop_rate": "0.2", "depth": True, "drop_path_rate": "0.1"})
    assert len(problems) == 4, problems
    assert problems[0] == ("parameter 'pretrained' of backbone 'net' must be true or false, got 'false' "
                           "(on a fire command line write Python literals inside {...}: False, True, 0.5)")
    assert "'drop_rate'" in problems[1] and "must be a number, got '0.2'" in problems[1]
    assert "'depth'" in problems[2] and "must be a whole number, got True" in problems[2]
    assert "'drop_path_rate'" in problems[3] and "must be a number or null" in problems[3]


class CheckedFactory:
    """A factory object with its own check of parameter values (what validate asks after the signature)."""

    def __call__(self, num_classes, width: int = 8):
        return num_classes

    def check_params(self, params):
        return [] if params.get("width", 8) % 8 == 0 else [f"width {params['width']} must be a multiple of 8"]


def test_bind_asks_a_factory_that_checks_its_own_values():
    spec = ComponentSpec("net", "backbone", CheckedFactory())
    assert spec.bind({"width": 16}) == []
    assert spec.bind({"width": 12}) == ["width 12 must be a multiple of 8"]
    assert spec.bind({"widht": 12})[0].startswith("unknown parameter 'widht'")   # signature problems come first


def test_engine_args_are_not_recipe_parameters(registry):
    names = [p.name for p in registry["optimizer"].get("sgd").parameters()]
    assert names == ["lr", "momentum"]


def test_spec_is_frozen_and_kind_checked():
    spec = ComponentSpec("x", "loss", make_loss)
    with pytest.raises(Exception):
        spec.name = "y"
    with pytest.raises(ValueError, match="unknown kind"):
        ComponentSpec("x", "lossy", make_loss)


def test_resolver_is_consulted_after_a_miss():
    seen = []

    def resolver(kind, name):
        seen.append((kind, name))
        return ComponentSpec(name, kind, make_loss, "resolved") if name.startswith("dyn_") else None

    reg = Registry(resolver=resolver)
    assert reg["loss"].get("dyn_one").description == "resolved"
    with pytest.raises(UnknownComponentError):
        reg["loss"].get("nothing")
    assert seen == [("loss", "dyn_one"), ("loss", "nothing")]
