"""Recipes: lossless round trip, planning, and validation that reports every problem at once."""
import json

import pytest

from ensemble_core import ComponentSpec, hookimpl
from ensemble_core.errors import RecipeError
from ensemble_core.manager import build_catalog
from ensemble_core.recipe import Recipe
from ensemble_core.recipe import validate as validate_with_contracts
from helpers_pipeline import plugin_module


def validate(*args, **kwargs):
    """These tests check names and parameter binding against stub factories that return strings, which keep
    no component contract (tests/test_components_contract.py and tests/test_contracts.py cover those)."""
    return validate_with_contracts(*args, contracts=False, **kwargs)


def t_backbone(num_classes, pretrained: bool = False, drop_rate: float = 0.0):
    return "model"


def t_loss(label_smoothing: float = 0.0):
    return "loss"


def t_weighted(terms: list):
    return "weighted"


def t_opt(parameters, lr: float = 1e-3, weight_decay: float = 0.0):
    return "opt"


def t_simple(**params):
    return "x"


def t_task(label_transform=None):
    return "task"


def t_voter():
    return "voter"


def t_splitter(n_splits: int = 3, val_fraction: float = 0.2):
    return "splitter"


def _plugin():
    mod = "tests.test_recipe"

    @hookimpl
    def ensemble_register_backbones():
        return [ComponentSpec("t_net", "backbone", f"{mod}:t_backbone", "test net")]

    @hookimpl
    def ensemble_register_losses():
        return [ComponentSpec("t_ce", "loss", f"{mod}:t_loss", "test ce"),
                ComponentSpec("t_sum", "loss", f"{mod}:t_weighted", "test sum", nested={"terms": "loss"})]

    @hookimpl
    def ensemble_register_optimizers():
        return [ComponentSpec("t_adam", "optimizer", f"{mod}:t_opt", "test adam")]

    @hookimpl
    def ensemble_register_tasks():
        return [ComponentSpec("t_mask", "task", f"{mod}:t_task", "test task")]

    @hookimpl
    def ensemble_register_voters():
        return [ComponentSpec("t_soft", "voter", f"{mod}:t_voter", "test voter")]

    @hookimpl
    def ensemble_register_splitters():
        return [ComponentSpec("t_shuffle", "splitter", f"{mod}:t_splitter", "test splitter")]

    @hookimpl
    def ensemble_register_executors():
        return [ComponentSpec("t_local", "executor", f"{mod}:t_voter", "test executor")]

    return plugin_module("recipe_test_plugin", locals())


@pytest.fixture(scope="module")
def registry():
    return build_catalog([_plugin()], autoload=False).registry


def good_recipe():
    return {
        "version": 1, "name": "t", "seed": 7,
        "split": {"name": "t_shuffle", "params": {"n_splits": 2}},
        "voter": "t_soft", "decision": {"name": "class_offsets", "params": {"force": True}}, "executor": "t_local",
        "defaults": {"optimizer": {"name": "t_adam", "params": {"lr": 0.01}}, "epochs": 2, "tta": []},
        "tasks": [
            {"task": "t_mask", "backbones": ["t_net", {"name": "t_net", "params": {"drop_rate": 0.1}}],
             "loss": {"name": "t_sum", "params": {"terms": [{"name": "t_ce", "weight": 0.3},
                                                           {"name": "t_ce", "params": {"label_smoothing": 0.1},
                                                            "weight": 0.7}]}}},
        ],
    }


def test_round_trip_is_lossless(tmp_path):
    data = good_recipe()
    assert Recipe.from_dict(data).to_dict() == {**data}
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"r{suffix}"
        Recipe.from_dict(data).save(path)
        assert Recipe.load(path).to_dict() == data


def test_valid_recipe_plans_task_x_backbone_x_split(registry):
    recipe = validate(good_recipe(), registry)
    members = recipe.plan()
    assert len(members) == 1 * 2 * 2
    assert {m.split_index for m in members} == {0, 1}
    assert members[0].fields["epochs"] == 2
    assert members[0].fields["loss"]["name"] == "t_sum"
    assert len({m.run_name for m in members}) == 4, "run folders must be distinct"
    # same config -> same hash; a changed field -> a new folder
    again = Recipe.from_dict(good_recipe()).plan()
    assert [m.run_name for m in again] == [m.run_name for m in members]
    changed = Recipe.from_dict(good_recipe()).override(**{"defaults.epochs": 3}).plan()
    assert changed[0].run_name != members[0].run_name


def test_refit_plans_members_on_every_person_after_the_splits(registry):
    data = {**good_recipe(), "refit": 1}
    recipe = validate(data, registry)
    members = recipe.plan()
    assert len(members) == 2 * (2 + 1)                     # per backbone: 2 splits + 1 refit member
    assert [m.split_index for m in members[:3]] == [0, 1, 2]
    assert [m.refit for m in members[:3]] == [False, False, True] and "-s2-refit-" in members[2].run_name
    assert [m.seed for m in members[:3]] == [recipe.seed, recipe.seed + 1, recipe.seed + 2]
    plain = Recipe.from_dict(good_recipe()).plan()
    assert [m.run_name for m in members if m.split_index < 2] == [m.run_name for m in plain]  # folds unchanged
    assert Recipe.from_dict(good_recipe()).to_dict() == good_recipe()          # refit 0 / share 0.5 left out
    assert Recipe.from_dict({**data, "refit_share": 0.7}).to_dict()["refit_share"] == 0.7
    bad = {**good_recipe(), "refit": -1, "refit_share": 0}
    with pytest.raises(RecipeError) as err:
        validate(bad, registry)
    assert "refit: must be a whole number >= 0" in str(err.value) and "refit_share: must be a number above 0" \
        in str(err.value)
    for value in (True, "1", 1.0):
        with pytest.raises(RecipeError, match="refit: must be a whole number"):
            validate({**good_recipe(), "refit": value}, registry)


def test_refit_refuses_what_needs_a_validation_score():
    from ensemble_core.manager import get_registry
    data = {"version": 1, "name": "r", "refit": 1, "split": "shuffle", "defaults": {},
            "tasks": [{"task": "all18", "backbone": "test_resnet", "early_stopping_patience": 2,
                       "scheduler": {"name": "timm_plateau"}}]}
    with pytest.raises(RecipeError) as err:
        validate(data, get_registry())
    text = str(err.value)
    assert "tasks[0].early_stopping_patience: refit members train on every person" in text
    assert "tasks[0].scheduler: the plateau schedule steps on the validation score" in text
    validate({**data, "refit": 0}, get_registry())         # without refit both are fine
    # set in defaults and shared by two entries: named once, where it was set
    shared = {**data, "defaults": {"early_stopping_patience": 2},
              "tasks": [{"task": "all18", "backbone": "test_resnet"}, {"task": "all18", "backbone": "test_convnext"}]}
    with pytest.raises(RecipeError) as err:
        validate(shared, get_registry())
    assert err.value.problems == ["defaults.early_stopping_patience: refit members train on every person, so there "
                                  "is no validation score to stop on; set refit: 0 or early_stopping_patience: null "
                                  "(refit members train the full epochs)"]
    with pytest.raises(RecipeError, match="scheduler"):     # a malformed scheduler is a listed problem, no TypeError
        validate({**data, "tasks": [{"task": "all18", "backbone": "test_resnet", "scheduler": 5}]}, get_registry())


def test_val_every_must_be_a_positive_integer_and_refuses_a_plateau_schedule():
    from ensemble_core.manager import get_registry
    data = {"version": 1, "name": "v", "split": "shuffle", "defaults": {"val_every": 2},
            "tasks": [{"task": "all18", "backbone": "test_resnet"}]}
    validate(data, get_registry())
    for value in (0, -1, 1.5, True, "2"):
        with pytest.raises(RecipeError, match=r"tasks\[0\]\.val_every: must be a positive integer"):
            validate({**data, "defaults": {"val_every": value}}, get_registry())
    plateau = {**data, "tasks": [{"task": "all18", "backbone": "test_resnet", "scheduler": {"name": "timm_plateau"}},
                                 {"task": "all18", "backbone": "test_convnext"}]}
    with pytest.raises(RecipeError) as err:
        validate(plateau, get_registry())
    assert err.value.problems == ["tasks[0].scheduler: the plateau schedule steps on a validation score every "
                                  "epoch, and defaults.val_every: 2 leaves epochs without one; use cosine / step, "
                                  "or val_every: 1"]
    validate({**plateau, "defaults": {}}, get_registry())      # every epoch scored: the plateau schedule is fine


def test_member_spec_round_trips():
    m = Recipe.from_dict(good_recipe()).plan()[0]
    from ensemble_core.recipe import MemberSpec
    again = MemberSpec.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m and again.config_hash() == m.config_hash()


def test_unknown_parameter_names_field_and_valid_names(registry):
    bad = good_recipe()
    bad["defaults"]["optimizer"]["params"]["weight_decy"] = 0.1
    with pytest.raises(RecipeError) as err:
        validate(bad, registry)
    msg = str(err.value)
    assert "defaults.optimizer.params" in msg
    assert "'weight_decy'" in msg and "'weight_decay'" in msg and "Valid names: lr, weight_decay" in msg


def test_all_problems_are_reported_at_once(registry):
    bad = good_recipe()
    bad["voter"] = "t_sotf"
    bad["defaults"]["epochs"] = 0
    bad["defaults"]["image_sise"] = [32, 32]
    bad["tasks"][0]["backbones"][1]["params"]["dropout"] = 0.2
    bad["tasks"][0]["loss"]["params"]["terms"][1]["name"] = "t_cee"
    with pytest.raises(RecipeError) as err:
        validate(bad, registry)
    problems = err.value.problems
    text = "\n".join(problems)
    assert len(problems) >= 5, text
    assert "voter: unknown voter 't_sotf'" in text and "'t_soft'" in text
    assert "defaults.image_sise: unknown field" in text and "'image_size'" in text
    assert "tasks[0].epochs: must be a positive integer" in text
    assert "tasks[0].backbones[1].params: unknown parameter 'dropout'" in text
    assert "tasks[0].loss.params.terms[1].name: unknown loss 't_cee'" in text


def test_unknown_top_level_field_and_version(registry):
    with pytest.raises(RecipeError, match="'tasks'"):
        Recipe.from_dict({**good_recipe(), "taks": []})
    with pytest.raises(RecipeError, match="version"):
        validate({**good_recipe(), "version": 99}, registry)


def test_missing_backbone_and_task(registry):
    bad = good_recipe()
    bad["tasks"] = [{"loss": "t_ce"}]
    with pytest.raises(RecipeError) as err:
        validate(bad, registry)
    text = str(err.value)
    assert "tasks[0].task: required" in text and "needs 'backbone' or 'backbones'" in text


def test_unparseable_file_names_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("tasks: [\n")
    with pytest.raises(RecipeError) as err:
        Recipe.load(path)
    assert "broken.yaml" in str(err.value)
