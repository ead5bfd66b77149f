import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ensemble_core.errors import UnknownComponentError
from ensemble_core.labels import age_to_class, check_coverage, class_id, softmax
from ensemble_core.manager import get_registry
from ensemble_core.tasks import AgeBins, AgeThreshold


@pytest.fixture(scope="module")
def reg():
    return get_registry()


@pytest.fixture
def samples():
    # mask, gender, age (years) chosen to hit the threshold / bin edges
    rows = [(0, 0, 20), (1, 0, 29), (2, 0, 30), (0, 0, 57), (0, 0, 58), (1, 0, 60),
            (2, 1, 21), (0, 1, 45), (1, 1, 46), (2, 1, 56), (0, 1, 57), (0, 1, 59)]
    df = pd.DataFrame(rows, columns=["mask", "gender", "age"])
    df["image_id"] = [f"p{i}/mask1.jpg" for i in range(len(df))]
    return df


def task(reg, name, transform=None, **params):
    lt = None if transform is None else reg.get("label_transform", transform[0]).build(**transform[1])
    return reg.get("task", name).build(label_transform=lt, **params)


def test_registered_names(reg):
    assert reg["task"].names() == ["age", "age_female", "age_male", "all18", "factor", "gender", "joint", "mask",
                                   "multihead"]
    assert reg["label_transform"].names() == ["age3", "age_bins", "age_bins5", "age_threshold"]
    assert reg.get("task", "multihead").nested == {"head_losses": "loss", "aux_age": "label_transform"}


def test_listing_and_building_tasks_never_imports_torch():
    code = ("import sys; from ensemble_core.manager import get_registry; r = get_registry(); "
            "[r.get('task', n).build(**({'factor': 'mask'} if n == 'factor' else {})) for n in r['task'].names()]; "
            "r.get('label_transform', 'age_bins5').build(); r.get('splitter', 'kfold').build(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_single_factor_tasks(reg, samples):
    m, g = task(reg, "mask"), task(reg, "gender")
    assert m.targets(samples).tolist() == samples["mask"].tolist() == m.truth(samples).tolist()
    assert g.targets(samples).tolist() == samples["gender"].tolist()
    assert m.num_outputs == 3 and g.num_outputs == 2 and m.covers == ("mask",) and g.covers == ("gender",)
    logits = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(m.probs(logits), softmax(logits))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        g.probs(logits)


def test_age_tasks_rows_and_truth(reg, samples):
    male, female, both = task(reg, "age_male"), task(reg, "age_female"), task(reg, "age")
    assert male.rows(samples).tolist() == (samples["gender"] == 0).tolist()
    assert female.rows(samples).tolist() == (samples["gender"] == 1).tolist()
    assert both.rows(samples).all()
    assert male.covers == ("age|male",) and female.covers == ("age|female",) and both.covers == ("age",)
    assert both.truth(samples).tolist() == [0, 0, 1, 1, 1, 2, 0, 1, 1, 1, 1, 1]
    assert both.uses_age and not task(reg, "mask").uses_age


def test_age_threshold_changes_targets_not_truth(reg, samples):
    t = task(reg, "age", ("age_threshold", {"male": 58, "female": 57}))
    assert t.targets(samples).tolist() == [0, 0, 1, 1, 2, 2, 0, 1, 1, 1, 2, 2]
    assert t.truth(samples).tolist() == [0, 0, 1, 1, 1, 2, 0, 1, 1, 1, 1, 1]  # metrics use original labels
    default = task(reg, "age", ("age_threshold", {}))
    assert default.targets(samples).tolist() == default.truth(samples).tolist()
    with pytest.raises(ValueError, match="male"):
        AgeThreshold(male=20)


def test_age_bins5_encode_and_merge(reg, samples):
    t = task(reg, "age_female", ("age_bins5", {}))
    assert t.num_outputs == 5 and t.heads[0].num_classes == 5
    assert t.targets(samples).tolist() == [0, 1, 2, 3, 4, 4, 1, 2, 3, 3, 3, 4]
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.15, 0.25]]))
    np.testing.assert_allclose(t.probs(logits), [[0.3, 0.45, 0.25]])
    assert t.probs(np.random.default_rng(1).normal(size=(4, 5))).shape == (4, 3)
    with pytest.raises(ValueError, match="merge"):
        AgeBins(edges=(20, 40), merge=(0, 1))


def test_age_bins_default_is_3_year_bins_merged_at_30_and_58(reg, samples):
    t = task(reg, "age", ("age_bins", {}))
    assert t.num_outputs == 14
    assert t.targets(samples).tolist() == [0, 3, 4, 12, 13, 13, 1, 9, 9, 12, 12, 13]
    p = np.full((1, 14), 1 / 14)
    np.testing.assert_allclose(t.probs(np.log(p)), [[4 / 14, 9 / 14, 1 / 14]])
    five = task(reg, "age", ("age_bins", {"edges": [20, 29, 45, 57], "merge": [0, 0, 1, 1, 2]}))
    assert five.targets(samples).tolist() == task(reg, "age", ("age_bins5", {})).targets(samples).tolist()


def test_age3_identity(reg, samples):
    t = task(reg, "age", ("age3", {}))
    assert t.targets(samples).tolist() == t.truth(samples).tolist()


def test_log18_of_factor_tasks_combine_to_a_distribution(reg):
    rng = np.random.default_rng(0)
    names = ["mask", "gender", "age_male", "age_female"]
    tasks = {n: task(reg, n) for n in names}
    assert check_coverage({n: t.covers for n, t in tasks.items()}) == []
    probs = {n: t.probs(rng.normal(size=(6, t.num_outputs))) for n, t in tasks.items()}
    total = sum(tasks[n].log18(probs[n]) for n in names)
    p18 = np.exp(total)
    np.testing.assert_allclose(p18.sum(1), 1.0, rtol=1e-6)
    # class mask=1, gender=1 (female), age=2 is the product of its factors
    np.testing.assert_allclose(p18[:, class_id(1, 1, 2)],
                               probs["mask"][:, 1] * probs["gender"][:, 1] * probs["age_female"][:, 2])


def test_all18_with_and_without_bins(reg, samples):
    plain = task(reg, "all18")
    assert plain.num_outputs == 18
    truth = class_id(samples["mask"], samples["gender"], age_to_class(samples["age"]))
    assert plain.targets(samples).tolist() == plain.truth(samples).tolist() == truth.tolist()
    binned = task(reg, "all18", ("age_bins5", {}))
    assert binned.num_outputs == 30
    targets = binned.targets(samples)
    assert targets.max() < 30 and targets[4] == 0 * 10 + 0 * 5 + 4  # male mask 58 -> oldest bin
    logits = np.full((1, 30), -20.0)
    logits[0, 1 * 10 + 1 * 5 + 3] = 20.0  # incorrect, female, bin 3 (46..57) -> class 1*6 + 3 + 1
    p = binned.probs(logits)
    assert p.shape == (1, 18) and int(p.argmax()) == class_id(1, 1, 1)
    np.testing.assert_allclose(binned.probs(np.random.default_rng(2).normal(size=(3, 30))).sum(1), 1.0)
    assert np.allclose(binned.log18(p), np.log(np.clip(p, 1e-12, 1)))


def test_multihead(reg, samples):
    t = task(reg, "multihead", ("age_threshold", {"male": 58, "female": 57}),
             head_losses={"age": {"name": "soft_f1", "params": {}}})
    assert [h.name for h in t.heads] == ["mask", "gender", "age"] and t.num_outputs == 8
    y = t.targets(samples)
    assert y.shape == (len(samples), 3)
    assert y[:, 2].tolist() == [0, 0, 1, 1, 2, 2, 0, 1, 1, 1, 2, 2]
    assert t.truth(samples).tolist() == class_id(samples["mask"], samples["gender"],
                                                 task(reg, "age").truth(samples)).tolist()
    logits = np.random.default_rng(3).normal(size=(4, 8))
    p, hp = t.probs(logits), t.head_probs(logits)
    assert p.shape == (4, 18)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(p[:, class_id(2, 0, 1)], hp["mask"][:, 2] * hp["gender"][:, 0] * hp["age"][:, 1])
    assert t.head_losses == {"age": {"name": "soft_f1", "params": {}}}
    with pytest.raises(ValueError, match="head_losses"):
        task(reg, "multihead", head_losses={"agee": "cross_entropy"})
    bins = task(reg, "multihead", ("age_bins5", {}))
    assert bins.num_outputs == 10 and bins.probs(np.zeros((2, 10))).shape == (2, 18)


def test_multihead_aux_age_head_trains_on_fine_bins_and_never_reaches_the_probabilities(reg, samples):
    """aux_age adds a fourth head (age_aux) over the transform's bins; its targets are the same ages in
    those bins, and the 18-class probabilities come from the first three heads only."""
    t = reg.build("task", {"name": "multihead", "params": {
        "aux_age": "age_bins", "head_losses": {"age_aux": "ordinal_cross_entropy"}}},
        label_transform=reg.build("label_transform", "age_bins5"))
    assert [h.name for h in t.heads] == ["mask", "gender", "age", "age_aux"]
    assert t.num_outputs == 3 + 2 + 5 + 14
    y = t.targets(samples)
    assert y.shape == (len(samples), 4)
    # ages 20 29 30 57 58 60 21 45 46 56 57 59 in 3-year bins (<=20, 23, ..., 53, 57, 58+)
    assert y[:, 3].tolist() == [0, 3, 4, 12, 13, 13, 1, 9, 9, 12, 12, 13]
    np.testing.assert_array_equal(y[:, :3], reg.build("task", "multihead", label_transform=reg.build(
        "label_transform", "age_bins5")).targets(samples))
    logits = np.random.default_rng(4).normal(size=(5, 24))
    changed = logits.copy()
    changed[:, 10:] = np.random.default_rng(5).normal(size=(5, 14)) * 10     # only the age_aux logits
    np.testing.assert_array_equal(t.probs(logits), t.probs(changed))
    np.testing.assert_allclose(t.probs(logits).sum(1), 1.0)
    with pytest.raises(ValueError, match="age_aux.*only with aux_age"):
        reg.build("task", {"name": "multihead", "params": {"head_losses": {"age_aux": "cross_entropy"}}})
    with pytest.raises(UnknownComponentError, match="aux_age"):
        reg.build("task", {"name": "multihead", "params": {"aux_age": "age_bins_typo"}})
    with pytest.raises(ValueError, match="aux_age must be a label transform"):
        reg.build("task", {"name": "multihead", "params": {"aux_age": 14}})
