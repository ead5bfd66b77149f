"""Logs people can read: a terminal gets progress bars, a log file / CI / a pipe gets one line per epoch."""
from __future__ import annotations

import io

import pytest

from ensemble_core.manager import get_registry
from ensemble_core.progress import PROGRESS_ENV, bars_wanted
from ensemble_core.train import train_member

from helpers_train import load_demo, person_split, tiny_member, single_torch_thread  # noqa: F401 (autouse fixture)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_unless_chosen(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.delitem(__import__("sys").modules, "ipykernel", raising=False)
    assert bars_wanted(Tty()) and not bars_wanted(io.StringIO())
    monkeypatch.setenv(PROGRESS_ENV, "lines")
    assert not bars_wanted(Tty())
    monkeypatch.setenv(PROGRESS_ENV, "bars")
    assert bars_wanted(io.StringIO())


@pytest.mark.parametrize("choice", ["lines", "bars"])
def test_training_logs_one_line_per_epoch_and_bars_only_when_wanted(demo_dir, tmp_path, capfd, monkeypatch, choice):
    monkeypatch.setenv(PROGRESS_ENV, choice)
    ds = load_demo(demo_dir)
    member = tiny_member("mask", epochs=2)
    train_member(member, ds, person_split(ds.train), tmp_path / member.run_name, registry=get_registry())
    out, err = capfd.readouterr()
    epochs = [line for line in out.splitlines() if f"{member.run_name} epoch" in line]
    assert len(epochs) == 2 and all("train_loss" in line and "macro_f1" in line for line in epochs)
    if choice == "lines":
        assert "\r" not in err and "\r" not in out     # not one redraw in the log
    else:
        assert "\r" in err                               # the terminal's bar, redrawn in place
