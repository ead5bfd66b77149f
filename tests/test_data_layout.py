import os

import numpy as np
import pandas as pd
import pytest

from ensemble_core.data.layout import load_dataset
from ensemble_core.errors import DataError
from ensemble_core.labels import class_id, age_to_class
from helpers_data import DEMO_KWARGS, copy_demo, first_person_folder, photo


def test_reads_competition_layout(demo_dir):
    ds = load_dataset(demo_dir)
    n = DEMO_KWARGS["n_people"]
    t = ds.train
    assert list(t.columns) == ["image_id", "path", "person", "mask", "gender", "age", "label18"]
    assert ds.n_people == n and len(t) == 7 * n
    assert t["image_id"].is_unique
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in t["path"])
    assert all(sorted(m) == [0, 0, 0, 0, 0, 1, 2] for _, m in t.groupby("person")["mask"])
    assert set(t["gender"]) == {0, 1}
    np.testing.assert_array_equal(t["label18"], class_id(t["mask"], t["gender"], age_to_class(t["age"])))
    # mixed extensions, any case
    assert {os.path.splitext(p)[1] for p in t["path"]} >= {".jpg", ".jpeg", ".png", ".JPG"}
    assert ds.eval is not None and len(ds.eval) == 7 * DEMO_KWARGS["n_eval_people"]
    assert list(ds.eval.columns) == ["image_id", "path"] and all(os.path.isfile(p) for p in ds.eval["path"])


def test_gender_coded_from_csv(demo_dir):
    csv = pd.read_csv(demo_dir / "train" / "train.csv", dtype=str)
    ds = load_dataset(demo_dir)
    persons = ds.train.drop_duplicates("person").set_index("person")
    for _, row in csv.iterrows():
        assert persons.loc[row["id"], "gender"] == (0 if row["gender"] == "male" else 1)
        assert persons.loc[row["id"], "age"] == int(row["age"])


@pytest.mark.parametrize("where", ["root", "train", "train.csv"])
def test_accepts_root_train_folder_or_csv(demo_dir, where):
    path = {"root": demo_dir, "train": demo_dir / "train", "train.csv": demo_dir / "train" / "train.csv"}[where]
    ds = load_dataset(path)
    assert len(ds.train) == 7 * DEMO_KWARGS["n_people"]
    assert ds.root == demo_dir.resolve()


def test_plain_csv_with_factors(demo_dir, tmp_path):
    ref = load_dataset(demo_dir).train.head(10)
    rel = [os.path.relpath(p, tmp_path) for p in ref["path"]]
    pd.DataFrame({"path": rel, "mask": ref["mask"], "gender": np.where(ref["gender"] == 0, "male", "female"),
                  "age": ref["age"], "person": ref["person"]}).to_csv(tmp_path / "list.csv", index=False)
    ds = load_dataset(tmp_path / "list.csv")
    assert ds.source == "csv" and ds.eval is None
    assert ds.train["path"].tolist() == ref["path"].tolist()
    np.testing.assert_array_equal(ds.train["label18"], ref["label18"])
    assert ds.train["person"].tolist() == ref["person"].tolist()


def test_plain_csv_with_label18(demo_dir, tmp_path):
    ref = load_dataset(demo_dir).train.head(10)
    pd.DataFrame({"path": ref["path"], "label18": ref["label18"]}).to_csv(tmp_path / "l.csv", index=False)
    ds = load_dataset(tmp_path / "l.csv")
    np.testing.assert_array_equal(ds.train["label18"], ref["label18"])
    assert ds.train["person"].is_unique  # no person column: each photo its own person


def test_plain_csv_bad_label_names_line_and_value(tmp_path):
    (tmp_path / "l.csv").write_text("path,label18\na.jpg,3\nb.jpg,19\n")
    with pytest.raises(DataError, match=r"l\.csv.*line 3.*'19'"):
        load_dataset(tmp_path / "l.csv")


def test_missing_column_names_file_and_close_match(demo_dir, tmp_path):
    root = copy_demo(demo_dir, tmp_path)
    csv = root / "train" / "train.csv"
    csv.write_text(csv.read_text().replace("gender", "gendr", 1))
    with pytest.raises(DataError) as err:
        load_dataset(root)
    msg = str(err.value)
    assert "train.csv" in msg and "'gender'" in msg and "'gendr'" in msg


def test_bad_gender_value_names_value_and_fix(demo_dir, tmp_path):
    root = copy_demo(demo_dir, tmp_path)
    csv = root / "train" / "train.csv"
    lines = csv.read_text().splitlines()
    parts = lines[1].split(",")
    parts[1] = "M"
    lines[1] = ",".join(parts)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad gender 'M'.*'male' or 'female'"):
        load_dataset(root)


def test_missing_person_folder_named(demo_dir, tmp_path):
    root = copy_demo(demo_dir, tmp_path)
    folder = first_person_folder(root)
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    with pytest.raises(DataError, match=folder.name):
        load_dataset(root)
    # skipping the folder works around it
    ds = load_dataset(root, exclude={str(folder)})
    assert ds.n_people == DEMO_KWARGS["n_people"] - 1


def test_exclude_drops_images(demo_dir):
    full = load_dataset(demo_dir)
    folder = first_person_folder(demo_dir)
    bad = photo(folder, "mask3")
    ds = load_dataset(demo_dir, exclude=[bad])
    assert len(ds.train) == len(full.train) - 1 and str(bad.resolve()) not in set(ds.train["path"])


def test_nonexistent_path_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="does not exist.*train/ and eval/"):
        load_dataset(tmp_path / "nope")


@pytest.mark.maskproxy
def test_maskproxy_counts(maskproxy_dir):
    ds = load_dataset(maskproxy_dir)
    assert ds.n_people == 2700 and len(ds.train) == 18900 and len(ds.eval) == 2100
    counts = ds.persons()["age_class"].value_counts().sort_index().tolist()
    assert counts == [1281, 1227, 192]
