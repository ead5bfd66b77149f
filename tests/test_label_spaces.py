"""Label spaces as data: mask_status reproduces labels.py exactly; any product of factors composes, decodes,
covers and broadcasts; colliding factor names are refused; the generic tasks work on any label space."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ensemble_core import labels as L
from ensemble_core.ensemble.combine import CoverageError, combine, require_coverage
from ensemble_core.errors import RecipeError
from ensemble_core.labelspace import (MASK_STATUS, Factor, LabelSpace, LabelSpaceError, label_space_from_params,
                                      single_factor)
from ensemble_core.manager import get_registry
from ensemble_core.recipe import validate
from ensemble_core.tasks import build_task, task_key

PRODUCT = label_space_from_params("product", {"category": ["shirt", "shoe", "hat"], "colour": ["red", "blue"]})


def test_mask_status_is_the_18_classes_of_labels_py():
    ids = np.arange(L.N_CLASSES)
    assert MASK_STATUS.n_classes == L.N_CLASSES == 18
    assert MASK_STATUS.class_names() == L.class_names()
    m, g, a = L.decode_class(ids)
    d = MASK_STATUS.decode(ids)
    assert (d["mask"] == m).all() and (d["gender"] == g).all() and (d["age"] == a).all()
    assert (MASK_STATUS.encode(mask=m, gender=g, age=a) == L.class_id(m, g, a)).all()
    assert MASK_STATUS.units() == L.FACTORS
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=7)
    for unit in ("mask", "age|male", "age|female", "age"):
        assert np.array_equal(MASK_STATUS.factor_log(unit, probs), L.factor_log18(unit, probs))
    samples = pd.DataFrame({"mask": [0, 2], "gender": [1, 0], "age": [25, 61]})
    assert MASK_STATUS.classes_of(samples).tolist() == L.class_id([0, 2], [1, 0], L.age_to_class([25, 61])).tolist()


def test_a_product_label_space_composes_in_product_order():
    assert PRODUCT.n_classes == 6
    assert PRODUCT.class_names() == ["shirt/red", "shirt/blue", "shoe/red", "shoe/blue", "hat/red", "hat/blue"]
    assert PRODUCT.encode(category=[2, 1], colour=[1, 0]).tolist() == [5, 2]
    assert {k: v.tolist() for k, v in PRODUCT.decode([5, 2]).items()} == {"category": [2, 1], "colour": [1, 0]}
    log = PRODUCT.factor_log("colour", np.array([[0.25, 0.75]]))
    assert np.allclose(np.exp(log), [[0.25, 0.75] * 3])


def test_conditional_factors_cover_one_class_of_the_other_factor_each():
    space = label_space_from_params("cond", {"gender": ["male", "female"], "age": ["young", "old"]},
                                    conditional={"age": "gender"})
    assert space.units() == ("gender", "age|male", "age|female")
    assert space.check_coverage({"g": ["gender"], "a": ["age"]}) == []
    problems = space.check_coverage({"g": ["gender"], "am": ["age|male"]})
    assert problems and "age|female" in problems[0]
    term = space.factor_log("age|male", np.array([[0.9, 0.1]]))
    assert term[0, 2:].tolist() == [0.0, 0.0]           # the women's classes are not this task's business


def test_colliding_factor_names_are_one_clear_error():
    with pytest.raises(LabelSpaceError, match=r"factor names collide: 'colour' and 'Colour' \(factors: colour, Colour\)"):
        LabelSpace("clash", [Factor("colour", ("red",)), Factor("Colour", ("blue",))])
    with pytest.raises(LabelSpaceError, match="collides with the sample table's column 'person'"):
        label_space_from_params("clash", [("person", ["a", "b"])])
    with pytest.raises(LabelSpaceError, match="lists class"):
        label_space_from_params("dup", {"colour": ["red", "red"]})
    with pytest.raises(LabelSpaceError, match=r"factors must map each factor to its class names.*got 'notjson'"):
        label_space_from_params("typed", "notjson")     # a flag value that was not YAML / JSON


def test_the_label_space_kind_is_registered():
    reg = get_registry()
    assert reg.build("label_space", "mask_status").class_names() == L.class_names()
    space = reg.build("label_space", {"name": "factors", "params": {"name": "p", "factors": {"a": ["x", "y"]}}})
    assert space.class_names() == ["x", "y"]


def test_joint_and_factor_tasks_work_on_any_label_space():
    reg = get_registry()
    samples = pd.DataFrame({"category": [0, 2, 1], "colour": [1, 1, 0]})
    joint = build_task(reg, "joint", label_space=PRODUCT)
    assert joint.num_original_classes == 6 and joint.truth(samples).tolist() == [1, 5, 2]
    colour = build_task(reg, {"name": "factor", "params": {"factor": "colour"}}, label_space=PRODUCT)
    category = build_task(reg, {"name": "factor", "params": {"factor": "category"}}, label_space=PRODUCT)
    assert colour.truth(samples).tolist() == [1, 1, 0] and colour.class_names == ["red", "blue"]
    assert task_key({"name": "factor", "params": {"factor": "colour"}}) == "factor:colour"
    pc = np.array([[0.2, 0.8]])
    pk = np.array([[0.1, 0.1, 0.8]])
    both = combine({"colour": (colour, pc), "category": (category, pk)}, label_space=PRODUCT)
    assert both.shape == (1, 6) and int(both.argmax()) == 5          # hat/blue
    assert np.allclose(both, (pk[:, :, None] * pc[:, None, :]).reshape(1, 6))
    with pytest.raises(CoverageError, match="no task predicts category"):
        require_coverage({"colour": colour}, label_space=PRODUCT)
    on_mask = build_task(reg, {"name": "factor", "params": {"factor": "age|male"}}, label_space=MASK_STATUS)
    people = pd.DataFrame({"mask": [0, 0], "gender": [0, 1], "age": [20, 70]})
    assert on_mask.rows(people).tolist() == [True, False] and on_mask.truth(people).tolist() == [0, 2]
    assert np.array_equal(on_mask.log18(pk / pk.sum()), L.factor_log18("age|male", pk / pk.sum()))


def test_validate_refuses_a_task_whose_factor_the_data_set_lacks():
    recipe = {"name": "r", "dataset": {"name": "image_folder"},
              "tasks": [{"task": "mask", "backbone": "resnet18"},
                        {"task": {"name": "factor", "params": {"factor": "colour"}}, "backbone": "resnet18"}]}
    with pytest.raises(RecipeError) as err:
        validate(recipe)
    msg = str(err.value)
    assert "tasks[0].task: task 'mask' predicts factor 'mask', which label space 'image_folder' lacks; its " \
           "factors are label" in msg
    assert "tasks[1].task" in msg and "'colour'" in msg and "its factors are label" in msg
    csv = {"name": "csv", "params": {"factors": {"category": ["a", "b"], "colour": ["r", "g"]}}}
    ok = validate({**recipe, "dataset": csv, "tasks": [{"task": "joint", "backbone": "resnet18"}]})
    assert ok.dataset == csv
    with pytest.raises(RecipeError, match="its factors are category, colour"):
        validate({**recipe, "dataset": csv, "tasks": [{"task": "gender", "backbone": "resnet18"}]})


def test_single_factor_space_names_its_classes():
    space = single_factor("folders", ["cat", "dog"])
    assert space.class_names() == ["cat", "dog"] and space.factor_names == ("label",)
