import json

import numpy as np
import pytest

from ensemble_core.manager import get_registry

from ensemble_core.data.layout import load_dataset
from ensemble_core.data.splits import KFoldSplitter, ShuffleSplitter, make_splits, strata
from ensemble_core.errors import DataError, UnknownComponentError


@pytest.fixture(scope="module")
def train(demo_dir):
    return load_dataset(demo_dir).train


def persons_of(train, rows):
    return set(train["person"].iloc[rows])


def assert_person_level(train, splits):
    for tr, va in splits:
        assert len(tr) and len(va)
        assert not persons_of(train, tr) & persons_of(train, va), "a person is in train and validation"
        assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(train)))


def test_shuffle_person_level_and_stratified(train, tmp_path):
    splits = make_splits(train, {"name": "shuffle", "params": {"n_splits": 3, "val_fraction": 0.2}}, 7,
                         tmp_path / "splits.json", registry=get_registry())
    assert len(splits) == 3
    assert_person_level(train, splits)
    n_people = train["person"].nunique()
    for _, va in splits:
        assert abs(len(persons_of(train, va)) - 0.2 * n_people) <= 3
        assert set(train["gender"].iloc[va]) == {0, 1}  # both genders in every validation split
    assert not np.array_equal(splits[0][1], splits[1][1])  # independent random splits


def test_kfold_every_person_validated_once(train):
    splits = make_splits(train, {"name": "kfold", "params": {"n_splits": 4}}, 0, None, registry=get_registry())
    assert len(splits) == 4
    assert_person_level(train, splits)
    val_people = [p for _, va in splits for p in persons_of(train, va)]
    assert sorted(val_people) == sorted(train["person"].unique())


def test_property_no_person_on_both_sides_for_many_seeds(train):
    persons = train.drop_duplicates("person").reset_index(drop=True)
    for seed in range(20):
        for splitter in (ShuffleSplitter(n_splits=2, val_fraction=0.3), KFoldSplitter(n_splits=3)):
            for tr, va in splitter.split(persons, seed):
                assert not set(tr) & set(va)
                assert len(set(persons["person"].iloc[tr]) & set(persons["person"].iloc[va])) == 0


def test_same_seed_same_splits_and_stratum_fractions(train):
    persons = train.drop_duplicates("person").reset_index(drop=True)
    a = ShuffleSplitter(3, 0.25).split(persons, 3)
    b = ShuffleSplitter(3, 0.25).split(persons, 3)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    s = strata(persons)
    for _, va in a:
        for k in np.unique(s):
            assert abs(np.sum(s[va] == k) - 0.25 * np.sum(s == k)) <= 0.5 + 1e-9


@pytest.mark.parametrize("make", [lambda seed: ShuffleSplitter(2, 0.25, seed=seed),
                                  lambda seed: KFoldSplitter(3, seed=seed)], ids=["shuffle", "kfold"])
def test_a_split_seed_fixes_the_people_whatever_the_recipe_seed(train, make):
    persons = train.drop_duplicates("person").reset_index(drop=True)
    val = lambda splits: [v.tolist() for _, v in splits]    # noqa: E731
    assert val(make(7).split(persons, 1)) == val(make(7).split(persons, 2)) == val(make(None).split(persons, 7))
    assert val(make(None).split(persons, 1)) != val(make(None).split(persons, 2))
    with pytest.raises(ValueError, match="seed must be a whole number"):
        make("7")


def test_manifest_is_reused(train, tmp_path):
    path = tmp_path / "splits.json"
    first = make_splits(train, "shuffle", 1, path, registry=get_registry())
    data = json.loads(path.read_text())
    assert data["splitter"] == {"name": "shuffle", "params": {}} and len(data["splits"]) == 3
    assert data["fingerprint"]
    # edit the manifest: a rerun must follow the file, not recompute
    data["splits"] = data["splits"][:1]
    path.write_text(json.dumps(data))
    again = make_splits(train, "shuffle", 1, path, registry=get_registry())
    assert len(again) == 1 and np.array_equal(again[0][1], first[0][1])


def test_manifest_mismatch_raises_clear_error(train, tmp_path):
    path = tmp_path / "splits.json"
    make_splits(train, "shuffle", 1, path, registry=get_registry())
    fewer = train[train["person"] != train["person"].iloc[0]].reset_index(drop=True)
    with pytest.raises(DataError, match=r"made from different data.*Use a fresh output folder.*delete .*splits\.json and .*members"):
        make_splits(fewer, "shuffle", 1, path, registry=get_registry())
    with pytest.raises(DataError, match=r"seed 1.*seed 2"):
        make_splits(train, "shuffle", 2, path, registry=get_registry())
    # a splitter with its own seed makes the same people whatever the recipe's seed: its manifest still serves
    pinned, ref = tmp_path / "pinned.json", {"name": "shuffle", "params": {"seed": 7}}
    first = make_splits(train, ref, 1, pinned, registry=get_registry())
    again = make_splits(train, ref, 2, pinned, registry=get_registry())
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    # ... but not when it draws a training share with the recipe's seed: those people would differ
    share = {"name": "shuffle", "params": {"seed": 7, "train_fraction": 0.5}}
    make_splits(train, share, 1, tmp_path / "share.json", registry=get_registry())
    with pytest.raises(DataError, match=r"seed 1.*seed 2"):
        make_splits(train, share, 2, tmp_path / "share.json", registry=get_registry())


def test_dropping_one_image_keeps_the_manifest_valid(train, tmp_path):
    path = tmp_path / "splits.json"
    make_splits(train, "shuffle", 1, path, registry=get_registry())
    fewer = train.drop(index=[3]).reset_index(drop=True)
    assert_person_level(fewer, make_splits(fewer, "shuffle", 1, path, registry=get_registry()))


def test_unknown_splitter_suggests(train):
    with pytest.raises(UnknownComponentError, match="kfold"):
        make_splits(train, "kfolds", 0, None, registry=get_registry())


def test_bad_params_named():
    with pytest.raises(ValueError, match="val_fraction"):
        ShuffleSplitter(val_fraction=1.5)


def test_shuffle_train_fraction_keeps_the_validation_people_and_trains_on_a_stratified_share(train):
    persons = train.drop_duplicates("person").reset_index(drop=True)
    s = strata(persons)
    full = ShuffleSplitter(2, 0.25, seed=5).split(persons, 0)
    half = ShuffleSplitter(2, 0.25, seed=5, train_fraction=0.5).split(persons, 0)
    for (tr_full, va_full), (tr_half, va_half) in zip(full, half):
        assert np.array_equal(va_full, va_half)                  # the people judged are the same
        assert set(tr_half) < set(tr_full) and not set(tr_half) & set(va_half)
        for k in np.unique(s[tr_full]):                          # every stratum halved, none emptied
            assert np.sum(s[tr_half] == k) == max(1, int(round(0.5 * np.sum(s[tr_full] == k))))
    again = ShuffleSplitter(2, 0.25, seed=5, train_fraction=0.5).split(persons, 0)
    other = ShuffleSplitter(2, 0.25, seed=5, train_fraction=0.5).split(persons, 9)
    assert [t.tolist() for t, _ in half] == [t.tolist() for t, _ in again]       # reproducible
    assert [t.tolist() for t, _ in half] != [t.tolist() for t, _ in other]       # each recipe seed its own share
    assert [v.tolist() for _, v in half] == [v.tolist() for _, v in other]
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="train_fraction"):
            ShuffleSplitter(train_fraction=bad)


def test_refit_splits_train_on_every_row_and_stay_out_of_the_manifest(train, tmp_path):
    path = tmp_path / "splits.json"
    splits = make_splits(train, {"name": "kfold", "params": {"n_splits": 3}}, 0, path, registry=get_registry(),
                         refit=2)
    assert len(splits) == 5
    assert_person_level(train, splits[:3])
    for tr, va in splits[3:]:
        assert tr.tolist() == list(range(len(train))) and len(va) == 0
    assert len(json.loads(path.read_text())["splits"]) == 3     # the manifest holds the person splits only
    again = make_splits(train, {"name": "kfold", "params": {"n_splits": 3}}, 0, path, registry=get_registry())
    assert len(again) == 3 and all(np.array_equal(a[1], b[1]) for a, b in zip(again, splits))
