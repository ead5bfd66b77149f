"""Weight source: ``factory(**params) -> source`` with ``problems(model_name) -> list[str]`` (why it cannot deliver
weights for that architecture here, with the fix; ``validate`` asks before any training) and
``load(model, model_name) -> record`` (fills the built model; the record goes into each member's config.json and
its ``input_config`` decides how the member normalises its images). A backbone names it as data:
``backbone: {name: resnet18, params: {weights: {name: team_folder, params: {folder: /shared/weights}}}}``.

This one reads a team's shared folder of state dicts, one ``<architecture>.safetensors`` per timm model name (the
tag dropped): the usual way weights reach an air-gapped cluster. It never falls back to random weights: a
missing file or one of another architecture is refused with the fix."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ensemble_core.errors import TrainingError

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "interpolation": "bilinear"}


class TeamFolderWeights:
    def __init__(self, folder: str = "~/team-weights"):
        self.folder = Path(folder).expanduser()

    def file(self, model_name: str) -> Path:
        return self.folder / f"{model_name.split('.', 1)[0]}.safetensors"

    def problems(self, model_name: str) -> list[str]:
        path = self.file(model_name)
        if not path.is_file():
            return [f"team_folder: no {path.name} in {str(self.folder)!r}; save the weights there "
                    f"(safetensors.torch.save_file(model.state_dict(), '{path}')) or name another folder"]
        return []

    def load(self, model, model_name: str) -> dict:
        from safetensors.torch import load_file

        path = self.file(model_name)
        if not path.is_file():
            raise TrainingError(self.problems(model_name)[0])
        state, own = load_file(str(path)), model.state_dict()
        usable = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        if len(usable) < len(own) // 2:       # the classifier may differ; most of the network may not
            raise TrainingError(f"team_folder: {path} fills {len(usable)} of {len(own)} tensors of {model_name!r}: "
                                f"weights of another architecture")
        missing = model.load_state_dict(usable, strict=False).missing_keys
        return {"source": "team_folder", "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "loaded": len(usable), "left_out": sorted(set(state) - set(usable)), "missing": sorted(missing),
                "input_config": IMAGENET}
