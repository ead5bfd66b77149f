import hashlib

import numpy as np
import pandas as pd

from ensemble_core.data.check import check_data
from ensemble_core.data.demo import BUILDING, MARKER, _draw, _person, main, make_demo
from ensemble_core.labels import age_to_class
from ensemble_core.data.images import ImageCache
from ensemble_core.data.layout import load_dataset
from helpers_data import DEMO_KWARGS


def digest(root):
    h = hashlib.sha1()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()


def test_competition_layout(demo_dir):
    train = pd.read_csv(demo_dir / "train" / "train.csv", dtype=str)
    assert list(train.columns) == ["id", "gender", "race", "age", "path"]
    assert set(train["gender"]) == {"male", "female"}
    assert (train["path"] == train["id"] + "_" + train["gender"] + "_" + train["race"] + "_" + train["age"]).all()
    info = pd.read_csv(demo_dir / "eval" / "info.csv", dtype=str)
    answers = pd.read_csv(demo_dir / "eval" / "answers.csv", dtype={"ImageID": str})
    assert list(info.columns) == list(answers.columns) == ["ImageID", "ans"]
    assert info["ImageID"].tolist() == answers["ImageID"].tolist()
    assert answers["ans"].between(0, 17).all()
    assert all((demo_dir / "eval" / "images" / i).is_file() for i in info["ImageID"])
    report = check_data(demo_dir)
    assert report.problems == [] and report.n_people == DEMO_KWARGS["n_people"]
    img = ImageCache(load_dataset(demo_dir).train["path"][:3]).array
    assert img.shape[1:] == (*DEMO_KWARGS["image_size"], 3)


def test_deterministic_and_skips_when_complete(tmp_path):
    a = make_demo(tmp_path / "a", n_people=3, n_eval_people=1, image_size=(24, 18), seed=5)
    b = make_demo(tmp_path / "b", n_people=3, n_eval_people=1, image_size=(24, 18), seed=5)
    assert digest(a) == digest(b)
    stamp = (a / MARKER).stat().st_mtime_ns
    first_image = next((a / "train" / "images").rglob("mask1.*"))
    mtime = first_image.stat().st_mtime_ns
    make_demo(a, n_people=3, n_eval_people=1, image_size=(24, 18), seed=5)
    assert (a / MARKER).stat().st_mtime_ns == stamp and first_image.stat().st_mtime_ns == mtime
    # other arguments rebuild
    make_demo(a, n_people=2, n_eval_people=1, image_size=(24, 18), seed=5)
    assert load_dataset(a).n_people == 2


def test_incomplete_build_is_redone(tmp_path):
    out = make_demo(tmp_path / "d", n_people=2, n_eval_people=1, image_size=(24, 18))
    (out / MARKER).unlink()                       # as a build killed half-way leaves it:
    (out / BUILDING).write_text("{}")             # no completion marker, the building marker still there
    next((out / "train" / "images").rglob("normal.*")).unlink()
    make_demo(out, n_people=2, n_eval_people=1, image_size=(24, 18))
    assert check_data(out).problems == []


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path / "c"), "--people", "2", "--eval-people", "1", "--size", "24", "18"]) == 0
    assert "2 train people" in capsys.readouterr().out
    assert (tmp_path / "c" / MARKER).is_file()


def test_mask_drawn_over_nose_and_mouth_or_below_nose():
    """Same person, same pose: the worn mask changes the nose and mouth, the incorrect one only the mouth."""
    size = (64, 48)
    person = _person(np.random.default_rng(3))
    colour = np.array([30.0, 30.0, 200.0])
    normal, worn, below = (_draw(person, state, colour, size, np.random.default_rng(9)).astype(float)
                           for state in ("normal", "worn", "incorrect"))

    def changed(a, rows):  # mean change against the unmasked photo in a band of rows (fractions of height)
        return np.abs(a - normal)[int(rows[0] * size[0]):int(rows[1] * size[0])].mean()

    eyes, nose, mouth = (0.30, 0.42), (0.50, 0.58), (0.64, 0.72)
    assert changed(worn, eyes) < 5 and changed(below, eyes) < 5
    assert changed(worn, nose) > 30 and changed(below, nose) < changed(worn, nose) / 2
    assert changed(worn, mouth) > 30 and changed(below, mouth) > 30


def test_gender_and_age_shape_the_drawn_features():
    people = [_person(np.random.default_rng([0, n])) for n in range(400)]
    female = np.array([p["gender"] == "female" for p in people])
    long_hair = np.array([p["long_hair"] for p in people])
    age = np.array([p["age"] for p in people])
    grey = np.array([p["grey"] for p in people])
    wrinkles = np.array([p["wrinkles"] for p in people])
    assert long_hair[female].mean() > 0.7 and long_hair[~female].mean() < 0.2
    assert set(np.unique(age_to_class(age))) == {0, 1, 2}
    for feature in (grey, wrinkles):
        means = [feature[age_to_class(age) == k].mean() for k in range(3)]
        assert means[0] < means[1] < means[2]


def test_never_replaces_a_data_set_it_did_not_make(tmp_path):
    import pytest

    from ensemble_core.errors import DataError

    real = tmp_path / "mask"
    (real / "train" / "images" / "000001_female_Asian_45").mkdir(parents=True)
    (real / "train" / "train.csv").write_text("id,gender,race,age,path\n")
    with pytest.raises(DataError, match="never replaces a data set it did not make"):
        make_demo(real, **DEMO_KWARGS)
    assert (real / "train" / "train.csv").read_text() == "id,gender,race,age,path\n"
    assert (real / "train" / "images" / "000001_female_Asian_45").is_dir()
