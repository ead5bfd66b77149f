"""The combiner: task probabilities -> the 18 classes, for every task structure the recipes use."""
from __future__ import annotations

import numpy as np
import pytest

from ensemble_core.ensemble.combine import CoverageError, combine
from ensemble_core.labels import N_CLASSES, class_id, decode_class
from ensemble_core.manager import get_registry


def task(name, **params):
    return get_registry().build("task", name, **params)


def peaked(index, n_classes, p=0.7):
    """A row of probabilities with ``p`` on ``index`` and the rest spread evenly."""
    row = np.full(n_classes, (1 - p) / (n_classes - 1))
    row[index] = p
    return row


ALL_COMBOS = [(m, g, a) for m in range(3) for g in range(2) for a in range(3)]


def test_seed_structure_maps_every_combination():
    """mask x gender x (age model of the predicted gender), as the seed combines them."""
    tasks = {n: task(n) for n in ("mask", "gender", "age_male", "age_female")}
    rows = {n: [] for n in tasks}
    for m, g, a in ALL_COMBOS:
        rows["mask"].append(peaked(m, 3))
        rows["gender"].append(peaked(g, 2))
        # the other gender's age model points elsewhere: it must not decide this image
        other = (a + 1) % 3
        rows["age_male"].append(peaked(a if g == 0 else other, 3, 0.9 if g == 0 else 0.4))
        rows["age_female"].append(peaked(a if g == 1 else other, 3, 0.9 if g == 1 else 0.4))
    parts = {n: (tasks[n], np.array(rows[n])) for n in tasks}
    out = combine(parts)
    assert out.shape == (18, N_CLASSES)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    expected = [int(class_id(m, g, a)) for m, g, a in ALL_COMBOS]
    assert out.argmax(axis=1).tolist() == expected
    # and the numbers are P(mask) * P(gender) * P(age | gender) exactly
    cm, cg, ca = decode_class(np.arange(N_CLASSES))
    for i in range(18):
        age = np.where(cg == 0, parts["age_male"][1][i][ca], parts["age_female"][1][i][ca])
        manual = parts["mask"][1][i][cm] * parts["gender"][1][i][cg] * age
        np.testing.assert_allclose(out[i], manual / manual.sum(), rtol=1e-9)


def test_mask_gender_and_shared_age_task():
    tasks = {n: task(n) for n in ("mask", "gender", "age")}
    probs = {n: [] for n in tasks}
    for m, g, a in ALL_COMBOS:
        probs["mask"].append(peaked(m, 3))
        probs["gender"].append(peaked(g, 2))
        probs["age"].append(peaked(a, 3))
    out = combine({n: (tasks[n], np.array(probs[n])) for n in tasks})
    assert out.argmax(axis=1).tolist() == [int(class_id(*c)) for c in ALL_COMBOS]


def test_multihead_heads_map_every_combination():
    mh = task("multihead")
    logits = []
    for m, g, a in ALL_COMBOS:
        row = np.zeros(mh.num_outputs)
        sm, sg, sa = mh.head_slices()
        row[sm.start + m] = 3.0
        row[sg.start + g] = 3.0
        row[sa.start + a] = 3.0
        logits.append(row)
    out = combine({"multihead": (mh, mh.probs(np.array(logits)))})
    assert out.argmax(axis=1).tolist() == [int(class_id(*c)) for c in ALL_COMBOS]


def test_all18_passes_through():
    t = task("all18")
    probs = np.array([peaked(c, 18) for c in range(18)])
    out = combine({"all18": (t, probs)})
    np.testing.assert_allclose(out, probs, rtol=1e-9)


def test_missing_task_row_makes_the_image_nan():
    tasks = {n: task(n) for n in ("mask", "gender", "age_male", "age_female")}
    parts = {n: (t, np.full((2, t.num_original_classes), 1.0 / t.num_original_classes)) for n, t in tasks.items()}
    parts["gender"][1][1] = np.nan
    out = combine(parts)
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()


@pytest.mark.parametrize("names, message", [
    (("mask", "gender"), "no task predicts age|male, age|female"),
    (("mask", "gender", "age", "age_male"), "both predict age|male"),
    (("all18", "mask"), "both predict mask"),
])
def test_bad_coverage_is_reported(names, message):
    parts = {n: (task(n), np.full((1, task(n).num_original_classes), 0.5)) for n in names}
    with pytest.raises(CoverageError, match=message.replace("|", r"\|")):
        combine(parts)
