import numpy as np
import pandas as pd
import pytest

from ensemble_core.cli import main as cli
from ensemble_core.errors import DataError
from ensemble_core.labels import class_id
from ensemble_core.ensemble.scoring import cli_main, score


def write(path, ids, ans):
    pd.DataFrame({"ImageID": ids, "ans": ans}).to_csv(path, index=False)
    return path


@pytest.fixture
def answers(tmp_path):
    ids = [f"img{i:03d}.jpg" for i in range(36)]
    return ids, write(tmp_path / "answers.csv", ids, np.arange(36) % 18)


def test_perfect_submission(tmp_path, answers):
    ids, ans = answers
    (tmp_path / "out").mkdir()
    sub = write(tmp_path / "out" / "submission.csv", ids[::-1], (np.arange(36) % 18)[::-1])  # order is free
    result = score(sub, ans)
    assert result["macro_f1"] == 1.0 and result["accuracy"] == 1.0
    assert result["task_accuracy"] == {"mask": 1.0, "gender": 1.0, "age": 1.0}
    assert (tmp_path / "out" / "confusion_matrix.png").stat().st_size > 1000
    assert np.trace(np.array(result["confusion"])) == 36


def test_gender_errors_only_hit_gender(tmp_path, answers):
    ids, ans = answers
    truth = np.arange(36) % 18
    m, g, a = truth // 6, (truth // 3) % 2, truth % 3
    pred = class_id(m, np.where(np.arange(36) < 9, 1 - g, g), a)  # flip gender of the first 9
    result = score(write(tmp_path / "s.csv", ids, pred), ans, tmp_path / "figs")
    assert result["task_accuracy"] == {"mask": 1.0, "gender": 0.75, "age": 1.0}
    assert result["accuracy"] == 0.75
    from sklearn.metrics import f1_score
    assert result["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert (tmp_path / "figs" / "confusion_matrix.png").is_file()
    assert len(result["per_class_f1"]) == 18


def test_missing_column(tmp_path, answers):
    ids, ans = answers
    pd.DataFrame({"ImageID": ids, "pred": 0}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match=r"s\.csv: missing column\(s\) 'ans'; found 'ImageID', 'pred'"):
        score(tmp_path / "s.csv", ans)


def test_ids_do_not_match(tmp_path, answers):
    ids, ans = answers
    sub = write(tmp_path / "s.csv", ids[1:] + ["stranger.jpg"], np.zeros(36, int))
    with pytest.raises(DataError, match=r"1 ImageID.*no prediction.*img000\.jpg.*stranger\.jpg"):
        score(sub, ans)


@pytest.mark.parametrize("value", ["18", "-1", "x", "2.5", ""])
def test_values_outside_classes(tmp_path, answers, value):
    ids, ans = answers
    values = ["0"] * 36
    values[4] = value
    sub = write(tmp_path / "s.csv", ids, values)
    with pytest.raises(DataError, match=rf"outside the classes 0\.\.17.*line 6: 'img004\.jpg' -> '{value}'"):
        score(sub, ans)


def test_cli(tmp_path, answers, capsys):
    ids, ans = answers
    sub = write(tmp_path / "s.csv", ids, np.arange(36) % 18)
    assert cli_main([str(sub), str(ans)]) == 0
    out = capsys.readouterr().out
    assert "macro F1:  1.0000" in out and "confusion matrix:" in out
    assert cli(["score", str(tmp_path / "nope.csv"), str(ans)]) == 1
    assert "nope.csv: file not found" in capsys.readouterr().err
