"""Seeds and random-number-generator state (saved in checkpoints so a resumed run continues the same streams)."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of ``n`` samples in ``epoch``: a function of (seed, epoch) only, so a
    resumed run and a fresh run with the same seed see the same batches."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors, numbers and lists only, so a checkpoint holding it loads with
    ``torch.load(weights_only=True)`` (nothing in a run folder may need unpickling)."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [int(version), [int(x) for x in mt], gauss],
             "numpy": [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                       float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((str(name), np.asarray(keys, dtype=np.int64).astype(np.uint32), int(pos), int(has_gauss),
                         float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError:  # different number of GPUs than when saved
            pass
