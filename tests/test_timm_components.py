"""timm's optimizers and schedulers by name: listing without torch, real signatures, recipe
validation, and a tiny member trained with a timm-only optimizer and scheduler."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ensemble_core.cli import main
from ensemble_core.errors import RecipeError
from ensemble_core.manager import get_registry
from ensemble_core.recipe import validate
from helpers_train import load_demo, person_split, tiny_member, single_torch_thread  # noqa: F401 (autouse fixture)


def recipe_with(**member):
    entry = {"task": "mask", "backbone": "test_efficientnet", **member}
    return {"name": "t", "tasks": [entry]}


def test_registered_optimizer_names_are_timms_list():
    from timm.optim import get_optimizer_info, list_optimizers

    from ensemble_core_plugins.optimizers import TIMM_OPTIMIZERS
    usable = {n for n in list_optimizers() if not isinstance(get_optimizer_info(n).opt_class, str)
              and not get_optimizer_info(n).second_order}
    assert set(TIMM_OPTIMIZERS) == usable
    assert set(get_registry()["optimizer"].names()) == usable


def test_registered_scheduler_names_cover_timms_factory():
    import inspect

    import timm.scheduler.scheduler_factory as factory

    from ensemble_core_plugins.schedulers import TIMM_SCHEDULERS
    source = inspect.getsource(factory.create_scheduler_v2)
    for name in TIMM_SCHEDULERS:
        assert f"'{name}'" in source, name
        assert get_registry()["scheduler"].get(f"timm_{name}").origin == "ensemble_core_plugins.schedulers"


def test_list_optimizers_pattern_never_imports_torch():
    code = ("import sys; from ensemble_core.cli import main; rc = main(['list', 'optimizers', 'la*']); "
            "heavy = [m for m in ('torch', 'timm') if m in sys.modules]; assert rc == 0, rc; assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()[1:]]
    assert {"lamb", "lars", "laprop"} <= set(names) and all(n.startswith("la") for n in names)


def test_show_lion_prints_the_real_signature(capsys):
    assert main(["show", "optimizer", "lion"]) == 0
    out = capsys.readouterr().out
    assert "betas  (default (0.9, 0.99))" in out and "caution  (default False)" in out
    assert "lr  (default 0.0001)" in out and "eps" not in out  # Lion has no eps
    assert main(["show", "scheduler", "timm_cosine"]) == 0
    out = capsys.readouterr().out
    assert "cycle_limit  (default 1)" in out and "warmup_epochs  (default 0)" in out
    assert "interval  (default 'epoch')" in out and "num_epochs" not in out


def test_unknown_optimizer_suggests_timm_names():
    with pytest.raises(RecipeError) as err:
        validate(recipe_with(optimizer={"name": "lamm", "params": {"lr": 1e-3}}))
    msg = str(err.value)
    assert "unknown optimizer 'lamm'" in msg and "'lamb'" in msg


def test_parameter_the_timm_factory_does_not_take_is_refused():
    with pytest.raises(RecipeError) as err:
        validate(recipe_with(optimizer={"name": "lion", "params": {"lr": 1e-4, "eps": 1e-8}},
                             scheduler={"name": "timm_cosine", "params": {"cycle_limt": 2}}))
    msg = str(err.value)
    assert "tasks[0].optimizer.params: unknown parameter 'eps' for optimizer 'lion'" in msg
    assert "unknown parameter 'cycle_limt'" in msg and "'cycle_limit'" in msg


def test_timm_names_resolve_on_demand_beyond_the_registered_list():
    spec = get_registry().get("optimizer", "lookahead_adamw")
    assert spec.origin == "ensemble_core_plugins.optimizers"
    validate(recipe_with(optimizer={"name": "lookahead_adamw", "params": {"lr": 1e-3, "betas": [0.9, 0.99]}}))


def test_plateau_is_driven_by_the_validation_metric():
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    sched = get_registry().build("scheduler", "timm_plateau", opt, 10, 4, patience_epochs=1, decay_rate=0.5)
    assert sched.interval == "epoch" and sched.scheduler.wants_metric
    for metric in (0.5, 0.6, 0.6, 0.6, 0.6):   # improves once, then stalls
        sched.scheduler.step(metric)
    assert opt.param_groups[0]["lr"] < 0.1


@pytest.fixture(scope="module")
def timm_run(demo_dir, tmp_path_factory):
    from ensemble_core.train import train_member
    ds = load_demo(demo_dir)
    member = tiny_member("mask", epochs=2,
                         optimizer={"name": "lion", "params": {"lr": 3e-4, "weight_decay": 0.01}},
                         scheduler={"name": "timm_cosine",
                                    "params": {"warmup_epochs": 1, "warmup_lr": 1e-5, "interval": "step"}})
    run_dir = tmp_path_factory.mktemp("runs") / member.run_name
    summary = train_member(member, ds, person_split(ds.train), run_dir, quiet=True, registry=get_registry())
    return run_dir, summary


def test_timm_only_optimizer_and_scheduler_train_a_tiny_member(timm_run):
    run_dir, summary = timm_run
    assert summary["status"] == "trained" and summary["epochs_run"] == 2
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # lr at the start of each epoch: timm's warm-up starts at warmup_lr, then the cosine starts at lr
    assert lines[0]["lr"] == pytest.approx(1e-5)
    assert lines[1]["lr"] == pytest.approx(1.5e-4)  # warmup_prefix false: half-way down the cosine over 2 epochs
    assert all(0 <= r["macro_f1"] <= 1 for r in lines)
    from ensemble_core.train.checkpoint import load_checkpoint
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["scheduler"]["t"] == 2 * json.loads((run_dir / "config.json").read_text())["steps_per_epoch"]
    assert type(ckpt["optimizer"]["param_groups"][0]["betas"]) in (tuple, list)
