import json

import pytest

from ensemble_core.cli import main as cli
from ensemble_core.data.check import check_data, preflight
from ensemble_core.data.formats import cli_check_data as cli_main
from ensemble_core.data.layout import load_dataset
from ensemble_core.errors import DataError
from helpers_data import DEMO_KWARGS, copy_demo, first_jpeg, first_person_folder, photo


@pytest.fixture
def data(demo_dir, tmp_path):
    return copy_demo(demo_dir, tmp_path)


def errors_about(report, text):
    return [p for p in report.errors if text in p.path or text in p.message]


def edit_csv(root, old, new, count=1):
    csv = root / "train" / "train.csv"
    csv.write_text(csv.read_text().replace(old, new, count))


def test_clean_data_counts_and_exit_zero(demo_dir, capsys):
    report = check_data(demo_dir)
    n = DEMO_KWARGS["n_people"]
    assert report.ok and report.problems == []
    assert (report.n_people, report.n_photos, report.n_eval_photos) == (n, 7 * n, 7 * DEMO_KWARGS["n_eval_people"])
    assert cli(["check-data", str(demo_dir)]) == 0
    assert f"{n} people, {7 * n} photos" in capsys.readouterr().out


def test_train_folder_accepted(demo_dir):
    assert check_data(demo_dir / "train").n_photos == 7 * DEMO_KWARGS["n_people"]


def test_missing_column_with_close_match(data):
    edit_csv(data, "age", "Age")
    report = check_data(data)
    [p] = errors_about(report, "missing column 'age'")
    assert p.path.endswith("train.csv") and "'Age'" in p.message


def test_extra_column_is_reported_as_warning(data):
    csv = data / "train" / "train.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0] + ",note"] + [line + ",x" for line in lines[1:]]) + "\n")
    report = check_data(data)
    assert report.ok
    assert any("extra column 'note'" in p.message and p.path.endswith("train.csv") for p in report.warnings)


def test_person_folder_missing(data):
    folder = first_person_folder(data)
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    report = check_data(data)
    [p] = errors_about(report, "person folder missing")
    assert p.path == str(folder)


def test_missing_photo_named_and_tolerated(data):
    """docs/DATA.md: a person missing one photo trains on the others (a warning, not an error)."""
    folder = first_person_folder(data)
    photo(folder, "normal").unlink()
    report = check_data(data)
    assert not errors_about(report, "missing photo")
    [p] = [w for w in report.warnings if "missing photo" in w.message]
    assert p.path == str(folder) and "normal" in p.message and "other 6 photo(s) are used" in p.message
    assert preflight(data) == set()
    ds = load_dataset(data)
    assert (ds.train["path"].str.startswith(str(folder) + "/")).sum() == 6


def test_unknown_photo_name(data):
    folder = first_person_folder(data)
    (folder / "mask6.jpg").write_bytes(photo(folder, "mask1").read_bytes())
    (folder / ".DS_Store").write_bytes(b"hidden files are ignored")
    report = check_data(data)
    [p] = errors_about(report, "unknown photo name")
    assert p.path == str(folder / "mask6.jpg")


def test_truncated_jpeg_detected_and_exit_nonzero(data, capsys):
    bad = first_jpeg(data)
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    report = check_data(data)
    [p] = errors_about(report, "truncated JPEG")
    assert p.path == str(bad)
    assert cli_main([str(data)]) == 1
    assert str(bad) in capsys.readouterr().out


def test_truncated_png_detected(data):
    bad = next((data / "train" / "images").rglob("*.png"))
    raw = bad.read_bytes()
    bad.write_bytes(raw[:-20])
    assert [p.path for p in errors_about(check_data(data), "truncated PNG")] == [str(bad)]


def test_empty_image(data):
    bad = first_jpeg(data)
    bad.write_bytes(b"")
    assert [p.path for p in errors_about(check_data(data), "empty file")] == [str(bad)]


def test_corrupt_jpeg_data_fails_decode(data):
    bad = first_jpeg(data)
    bad.write_bytes(b"\xff\xd8" + b"\x00garbage" * 50 + b"\xff\xd9")
    assert [p.path for p in errors_about(check_data(data), "cannot be decoded")] == [str(bad)]


def test_not_an_image(data):
    bad = first_jpeg(data)
    bad.write_text("this is a text file")
    assert [p.path for p in errors_about(check_data(data), "not a JPEG or PNG")] == [str(bad)]


def test_bad_gender_and_age_values(data):
    csv = data / "train" / "train.csv"
    lines = csv.read_text().splitlines()
    a, b = lines[1].split(","), lines[2].split(",")
    a[1], b[3] = "F", "sixty"
    lines[1], lines[2] = ",".join(a), ",".join(b)
    csv.write_text("\n".join(lines) + "\n")
    report = check_data(data)
    [g] = errors_about(report, "bad gender")
    [ag] = errors_about(report, "bad age")
    assert "'F'" in g.message and "line 2" in g.message and g.path.endswith(a[4])
    assert "'sixty'" in ag.message and "line 3" in ag.message and ag.path.endswith(b[4])


def test_missing_eval_image(data):
    victim = sorted((data / "eval" / "images").iterdir())[0]
    victim.unlink()
    [p] = errors_about(check_data(data), "eval image missing")
    assert p.path == str(victim)


def test_preflight_refuses_then_skips_and_lists(data, tmp_path):
    bad = first_jpeg(data)
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match=str(bad).replace(".", r"\.")):
        preflight(data)
    report_path = tmp_path / "run" / "skipped_files.json"
    skipped = preflight(data, skip_bad=True, report_path=report_path)
    assert skipped == {str(bad)}
    assert json.loads(report_path.read_text())["skipped"] == [str(bad)]
    ds = load_dataset(data, exclude=skipped)
    assert len(ds.train) == 7 * DEMO_KWARGS["n_people"] - 1


def test_preflight_cannot_skip_missing_column(data):
    edit_csv(data, "path", "folder")
    with pytest.raises(DataError, match="missing column 'path'"):
        preflight(data, skip_bad=True)


def test_preflight_clean_returns_empty(demo_dir):
    assert preflight(demo_dir) == set()


@pytest.mark.maskproxy
@pytest.mark.slow
def test_maskproxy_is_clean(maskproxy_dir):
    report = check_data(maskproxy_dir)
    assert (report.n_people, report.n_photos) == (2700, 18900)
    assert report.problems == []


def test_skip_bad_leaves_out_a_person_with_a_bad_label(data):
    edit_csv(data, ",male,", ",mle,")
    with pytest.raises(DataError, match="bad gender 'mle'"):
        preflight(data)
    skipped = preflight(data, skip_bad=True)
    assert len(skipped) == 1 and (data / "train" / "images").resolve() == type(data)(next(iter(skipped))).parent
    assert load_dataset(data, exclude=skipped).n_people == DEMO_KWARGS["n_people"] - 1
