"""The command line, run as users run it (subprocesses)."""
import subprocess
import sys
import time

import pytest

from helpers_proc import SUBPROCESS_DEADLINE_S

from ensemble_core.cli import main


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ensemble_core", *args], capture_output=True, text=True,
                          env=env, timeout=SUBPROCESS_DEADLINE_S)


def test_list_does_not_import_torch():
    code = ("import sys; from ensemble_core.cli import main; rc = main(['list']); "
            "heavy = [m for m in ('torch', 'timm', 'albumentations', 'cv2', 'sklearn') if m in sys.modules]; "
            "assert rc == 0, rc; assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=SUBPROCESS_DEADLINE_S)
    assert proc.returncode == 0, proc.stderr


def test_list_backbones_shows_seed_backbones_with_descriptions_and_origin():
    proc = run("list", "backbones")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    for name in ("resnext50d_32x4d", "tf_efficientnet_b3_ns"):
        assert name in lines, proc.stdout
        assert "[ensemble_core_plugins.backbones]" in lines[name]
        assert len(lines[name].split("[")[0].split(None, 1)[1].strip()) > 10, "needs a description"


def test_list_losses_has_weighted_sum_and_pattern_filters():
    proc = run("list", "losses")
    assert "weighted_sum" in proc.stdout and "soft_f1" in proc.stdout
    proc = run("list", "losses", "*f1*")
    names = [line.split()[0] for line in proc.stdout.splitlines()[1:]]
    assert names and all("f1" in n for n in names)


def test_show_unknown_backbone_suggests_and_fails():
    proc = run("show", "backbone", "tf_efficientnet_b3_nss")
    assert proc.returncode != 0
    assert "tf_efficientnet_b3_ns" in proc.stderr and "Did you mean" in proc.stderr


def test_show_known_component_lists_parameters(capsys):
    assert main(["show", "optimizer", "adamw"]) == 0
    out = capsys.readouterr().out
    assert "origin:  ensemble_core_plugins.optimizers" in out
    assert "lr" in out and "weight_decay" in out


def test_unknown_kind_is_an_error(capsys):
    assert main(["list", "lossez"]) == 2
    assert "losses" in capsys.readouterr().err


def test_validate_reports_bad_parameter(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "version: 1\nname: bad\n"
        "tasks:\n  - task: mask\n    backbone: resnet18\n"
        "    optimizer: {name: adamw, params: {lr: 0.001, weight_decy: 0.01}}\n")
    proc = run("validate", str(recipe))
    assert proc.returncode == 1
    assert "tasks[0].optimizer.params" in proc.stderr and "weight_decay" in proc.stderr
    assert "bad.yaml" in proc.stderr


def test_validate_good_recipe(tmp_path):
    recipe = tmp_path / "good.json"
    recipe.write_text('{"version": 1, "name": "good", "tasks": [{"task": "mask", "backbone": "resnet18"}]}')
    proc = run("validate", str(recipe))
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout and "3 member(s)" in proc.stdout


def test_plugins_lists_builtins():
    proc = run("plugins")
    assert proc.returncode == 0
    assert "ensemble_core_plugins.losses  (built-in" in proc.stdout
