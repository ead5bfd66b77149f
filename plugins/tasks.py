"""Built-in tasks: what one member learns. Implementations live in :mod:`ensemble_core.tasks`."""
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec

_M = "ensemble_core.tasks"


@hookimpl
def ensemble_register_tasks():
    return [
        ComponentSpec("mask", "task", f"{_M}:mask_task", "mask status: mask / incorrect / normal (3 classes)"),
        ComponentSpec("gender", "task", f"{_M}:gender_task", "gender: male / female (2 classes)"),
        ComponentSpec("age", "task", f"{_M}:age_task", "age <30 / 30-59 / 60+ of everyone (3 classes)"),
        ComponentSpec("age_male", "task", f"{_M}:age_male_task", "age of men only (3 classes)"),
        ComponentSpec("age_female", "task", f"{_M}:age_female_task", "age of women only (3 classes)"),
        ComponentSpec("all18", "task", f"{_M}:all18_task", "one head over the 18 classes"),
        ComponentSpec("multihead", "task", f"{_M}:multihead_task",
                      "heads mask 3 + gender 2 + age 3, a loss per head (head_losses: {head: loss}); aux_age: "
                      "a label transform for an auxiliary age head (age_aux) that only shapes the features",
                      nested={"head_losses": "loss", "aux_age": "label_transform"}),
        ComponentSpec("joint", "task", f"{_M}:joint_task",
                      "one head over every final class of the run's label space (any data set)"),
        ComponentSpec("factor", "task", f"{_M}:factor_task",
                      "one factor of the run's label space (factor: colour), or a conditional one (factor: age|male)"),
    ]
