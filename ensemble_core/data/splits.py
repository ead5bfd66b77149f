"""Person-level train/validation splits, saved to a manifest so reruns reuse them.

A splitter works on the person table (one row per person: ``person``,
``gender``, ``age``, ``age_class``) and returns ``(train_index, val_index)``
arrays over its rows; :func:`make_splits` turns those into row indices of the
photo table, so one person's photos are always on one side.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ensemble_core.atomic import atomic_write_json
from ensemble_core.errors import DataError
from ensemble_core.data.layout import persons_table

MANIFEST_VERSION = 1


def strata(persons: pd.DataFrame) -> np.ndarray:
    """Stratum of each person: gender x age class (0..5); for another label space, its ``stratum`` column."""
    if "gender" not in persons and "stratum" in persons:
        return np.asarray(persons["stratum"], dtype=np.int64)
    age_class = persons["age_class"] if "age_class" in persons else \
        np.where(persons["age"] < 30, 0, np.where(persons["age"] < 60, 1, 2))
    return np.asarray(persons["gender"], dtype=np.int64) * 3 + np.asarray(age_class, dtype=np.int64)


def _split_seed(name: str, seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{name}: seed must be a whole number (or left out to follow the recipe's seed), "
                         f"got {seed!r}")
    return seed


class ShuffleSplitter:
    """``n_splits`` independent random splits, ``val_fraction`` of every stratum to validation.

    ``seed`` fixes the people of each split whatever the recipe's seed (to compare training seeds, or
    settings, on the same people); left out, the split follows the recipe's seed.

    ``train_fraction`` < 1 trains on that share of the remaining people (stratified): a learning-curve point,
    what more people would buy. The share is drawn with the recipe's seed after the validation people, so with
    a pinned ``seed`` the judged people stay fixed while each training seed draws its own share."""

    def __init__(self, n_splits: int = 3, val_fraction: float = 0.2, seed: int | None = None,
                 train_fraction: float = 1.0):
        if not isinstance(n_splits, int) or n_splits < 1:
            raise ValueError(f"shuffle: n_splits must be a positive integer, got {n_splits!r}")
        if not 0 < float(val_fraction) < 1:
            raise ValueError(f"shuffle: val_fraction must be between 0 and 1, got {val_fraction!r}")
        if isinstance(train_fraction, bool) or not 0 < float(train_fraction) <= 1:
            raise ValueError(f"shuffle: train_fraction must be above 0 and at most 1 (1 = every person not in "
                             f"validation), got {train_fraction!r}")
        self.n_splits, self.val_fraction = n_splits, float(val_fraction)
        self.train_fraction = float(train_fraction)
        self.seed = _split_seed("shuffle", seed)

    def split(self, persons: pd.DataFrame, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        recipe_seed, seed = int(seed) % 2**64, seed if self.seed is None else self.seed   # numpy seeds are >= 0
        n = len(persons)
        if n < 2:
            raise DataError(f"shuffle split needs at least 2 people, got {n}")
        s = strata(persons)
        out = []
        for i in range(self.n_splits):
            rng = np.random.default_rng([int(seed) % 2**64, i])   # numpy seeds are >= 0
            is_val = np.zeros(n, dtype=bool)
            for k in np.unique(s):
                members = rng.permutation(np.flatnonzero(s == k))
                n_val = int(round(len(members) * self.val_fraction))
                is_val[members[:n_val]] = True
            if not is_val.any():  # tiny data: at least one validation person
                is_val[rng.integers(n)] = True
            if is_val.all():
                is_val[rng.integers(n)] = False
            out.append((self._subsample(np.flatnonzero(~is_val), s, [recipe_seed, i, 1]), np.flatnonzero(is_val)))
        return out

    def _subsample(self, train: np.ndarray, s: np.ndarray, rng_seed) -> np.ndarray:
        if self.train_fraction >= 1:
            return train
        rng = np.random.default_rng(rng_seed)    # its own stream: the validation people do not move
        strata_of = s[train]
        keep = []
        for k in np.unique(strata_of):
            share = max(1, int(round((strata_of == k).sum() * self.train_fraction)))
            keep.append(rng.permutation(train[strata_of == k])[:share])
        return np.sort(np.concatenate(keep))


class KFoldSplitter:
    """Stratified k-fold over people (sklearn ``StratifiedGroupKFold``, shuffled with the seed; ``seed`` fixes
    the folds whatever the recipe's seed, as for ``shuffle``)."""

    def __init__(self, n_splits: int = 5, seed: int | None = None):
        if not isinstance(n_splits, int) or n_splits < 2:
            raise ValueError(f"kfold: n_splits must be an integer >= 2, got {n_splits!r}")
        self.n_splits = n_splits
        self.seed = _split_seed("kfold", seed)

    def split(self, persons: pd.DataFrame, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        import warnings

        from sklearn.model_selection import StratifiedGroupKFold

        seed = seed if self.seed is None else self.seed

        n = len(persons)
        if n < self.n_splits:
            raise DataError(f"kfold with n_splits={self.n_splits} needs at least that many people, got {n}")
        cv = StratifiedGroupKFold(n_splits=self.n_splits, shuffle=True, random_state=int(seed) % (2 ** 32))
        with warnings.catch_warnings():  # rare strata smaller than n_splits: sklearn warns, still splits
            warnings.simplefilter("ignore", UserWarning)
            folds = list(cv.split(np.zeros(n), strata(persons), groups=np.asarray(persons["person"])))
        return [(np.asarray(tr), np.asarray(va)) for tr, va in folds]


# ---------------------------------------------------------------- manifest
def fingerprint(persons: pd.DataFrame) -> str:
    """Hash of the sorted (person, gender, age) table: changes when people or their labels change."""
    cols = ["person", "gender", "age"] if "gender" in persons else ["person", "stratum"]
    p = persons[cols].astype(str).sort_values("person")
    blob = "\n".join(",".join(r) for r in p.itertuples(index=False, name=None)).encode()
    return hashlib.sha1(blob).hexdigest()


def split_data_hash(train_df: pd.DataFrame, split: tuple[Sequence[int], Sequence[int]]) -> str:
    """What a member trains on, as far as the sample table says: the image ids, persons and labels of its
    training and validation rows, in order (every column but ``path``: the same data in a moved folder hashes
    the same). Changes when a person, an image or a label of the split changes, or the split itself."""
    cols = sorted(c for c in train_df.columns if c != "path")
    h = hashlib.sha1(("\x1f".join(cols)).encode())
    for rows in split:
        part = train_df.iloc[np.asarray(rows, dtype=np.int64)][cols].astype(str).to_numpy()
        h.update("\n".join("\x1f".join(r) for r in part).encode())
        h.update(b"|")
    return h.hexdigest()[:12]


def _ref(splitter_ref: Any) -> dict:
    from ensemble_core.recipe import normalize_ref
    return normalize_ref(splitter_ref)


def build_splitter(splitter_ref: Any, registry):
    return registry.build("splitter", splitter_ref, field="split")


def make_splits(train_df: pd.DataFrame, splitter_ref: Any, seed: int, manifest_path: str | Path | None = None, *,
                registry, refit: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Person-level splits as ``[(train_rows, val_rows), ...]`` (row positions in ``train_df``).

    With ``manifest_path`` the splits (person ids) are saved as JSON on first use
    and read back afterwards; a manifest made from other data, another splitter
    or another seed raises :class:`DataError`. ``refit`` appends that many splits that train on every row and
    validate on none (the recipe's refit members; not in the manifest, they follow from the data).
    """
    splits, save = plan_splits(train_df, splitter_ref, seed, manifest_path, registry=registry, refit=refit)
    save()
    return splits


def plan_splits(train_df: pd.DataFrame, splitter_ref: Any, seed: int, manifest_path: str | Path | None = None, *,
                registry, refit: int = 0) -> tuple[list[tuple[np.ndarray, np.ndarray]], Callable[[], None]]:
    """:func:`make_splits` without writing: the splits and a function that writes the manifest when it is
    new (a no-op when the manifest was read back), so a run can check everything before it writes."""
    persons = persons_table(train_df)
    ref = _ref(splitter_ref)
    fp = fingerprint(persons)
    manifest_path = Path(manifest_path) if manifest_path is not None else None
    new = manifest_path is None or not manifest_path.is_file()
    if not new:
        person_splits = _read_manifest(manifest_path, ref, int(seed), fp)
    else:
        splitter = build_splitter(ref, registry)
        ids = persons["person"].astype(str).to_numpy()
        person_splits = [(ids[tr].tolist(), ids[va].tolist()) for tr, va in splitter.split(persons, int(seed))]

    def save() -> None:
        if new and manifest_path is not None:
            _write_manifest(manifest_path, ref, int(seed), fp, len(persons), person_splits)
    return rows_of(train_df, person_splits) + refit_splits(len(train_df), refit), save


def refit_splits(n_rows: int, refit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``refit`` splits that train on all ``n_rows`` rows and validate on none (refit members)."""
    return [(np.arange(n_rows), np.zeros(0, dtype=np.int64)) for _ in range(int(refit))]


def rows_of(train_df: pd.DataFrame, person_splits) -> list[tuple[np.ndarray, np.ndarray]]:
    """Person-id splits -> row positions of ``train_df``."""
    person = train_df["person"].astype(str).to_numpy()
    out = []
    for tr, va in person_splits:
        overlap = set(tr) & set(va)
        if overlap:
            raise DataError(f"split puts person(s) {sorted(overlap)[:5]} in both train and validation")
        out.append((np.flatnonzero(np.isin(person, list(tr))), np.flatnonzero(np.isin(person, list(va)))))
    return out


def _write_manifest(path: Path, ref: dict, seed: int, fp: str, n_persons: int, person_splits) -> None:
    data = {"version": MANIFEST_VERSION, "splitter": ref, "seed": seed, "fingerprint": fp,
            "n_persons": n_persons,
            "splits": [{"train": sorted(tr), "val": sorted(va)} for tr, va in person_splits]}
    atomic_write_json(path, data, indent=1)


def _read_manifest(path: Path, ref: dict, seed: int, fp: str):
    try:
        data = json.loads(path.read_text())
        splits = [(list(map(str, s["train"])), list(map(str, s["val"]))) for s in data["splits"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"split manifest {path} is unreadable ({exc!r}); delete it to make new splits") from exc
    fix = (f"Use a fresh output folder for other data or splits (the finished members here were trained on "
           f"these); to start this folder over, delete {path} and {path.parent / 'members'}")
    if data.get("fingerprint") != fp:
        raise DataError(f"split manifest {path} was made from different data ({data.get('n_persons')} people, "
                        f"fingerprint {str(data.get('fingerprint'))[:10]}; this data gives {fp[:10]}). {fix}")
    params = ref.get("params") or {}
    # the splitter's own seed makes the recipe's moot, unless a training share is drawn with the recipe's seed
    pinned = params.get("seed") is not None and float(params.get("train_fraction", 1.0)) >= 1
    if data.get("splitter") != ref or (data.get("seed") != seed and not pinned):
        raise DataError(f"split manifest {path} was made with splitter {data.get('splitter')} seed "
                        f"{data.get('seed')}, but this run asks for {ref} seed {seed}. {fix}")
    return splits
