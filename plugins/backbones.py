"""Built-in backbones: a curated list of timm models, plus any timm model name on demand.

Curated specs have factories ``"ensemble_core_plugins.backbones:curated.<name>"``;
``curated`` is a namespace of :class:`TimmBackbone` objects, so listing never
imports torch or timm. Any other timm model name (``convnextv2_nano``,
``tf_efficientnet_b3.ns_jft_in1k``, ...) resolves through
:func:`ensemble_resolve_component`.

Weights: ``pretrained=True`` downloads through timm (needs network or a filled
Hugging Face cache); ``pretrained_path`` loads a local file. With no network a
download request fails within seconds with a :class:`TrainingError` that says how
to use ``pretrained_path`` — never a silent fallback to random weights.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

from ensemble_core.errors import TrainingError
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec, LazyFactory

# component name -> (timm model name, description)
CURATED: dict[str, tuple[str, str]] = {
    "resnext50d_32x4d": ("resnext50d_32x4d", "ResNeXt-50d 32x4d (seed's mask model)"),
    "tf_efficientnet_b0_ns": ("tf_efficientnet_b0.ns_jft_in1k", "EfficientNet-B0, Noisy Student weights"),
    "tf_efficientnet_b1_ns": ("tf_efficientnet_b1.ns_jft_in1k", "EfficientNet-B1, Noisy Student weights"),
    "tf_efficientnet_b2_ns": ("tf_efficientnet_b2.ns_jft_in1k", "EfficientNet-B2, Noisy Student weights"),
    "tf_efficientnet_b3_ns": ("tf_efficientnet_b3.ns_jft_in1k",
                              "EfficientNet-B3, Noisy Student weights (seed's gender/age model)"),
    "tf_efficientnet_b4_ns": ("tf_efficientnet_b4.ns_jft_in1k", "EfficientNet-B4, Noisy Student weights"),
    "efficientnet_b0": ("efficientnet_b0", "EfficientNet-B0 (timm training)"),
    "resnet18": ("resnet18", "ResNet-18"),
    "resnet34": ("resnet34", "ResNet-34"),
    "resnet50": ("resnet50", "ResNet-50"),
    "convnext_tiny": ("convnext_tiny", "ConvNeXt-Tiny"),
    "eca_nfnet_l0": ("eca_nfnet_l0", "ECA NFNet-L0 (in the winning ensemble)"),
    "vit_base_patch16_384": ("vit_base_patch16_384", "ViT-B/16 at 384px (in the winning ensemble; fixed input size)"),
    # tiny models: tests and CPU runs
    "test_efficientnet": ("test_efficientnet", "tiny EfficientNet for tests and CPU smoke runs"),
    "test_resnet": ("test_resnet", "tiny ResNet for tests and CPU smoke runs"),
    "test_convnext": ("test_convnext", "tiny ConvNeXt for tests and CPU smoke runs"),
    "resnet10t": ("resnet10t", "ResNet-10-T, small and quick on CPU"),
    "mobilenetv3_small_050": ("mobilenetv3_small_050", "MobileNetV3-Small 0.5x, small and quick on CPU"),
    "mobilenetv3_small_100": ("mobilenetv3_small_100", "MobileNetV3-Small 1.0x"),
}

PROBE_HOST = ("huggingface.co", 443)
PROBE_TIMEOUT_S = 3.0


class TimmBackbone(LazyFactory):
    """Factory for one timm model: ``TimmBackbone("resnet18")(num_classes, pretrained=..., ...)``."""

    def __init__(self, model_name: str):
        super().__init__(model_name)
        self.model_name = model_name

    def __call__(self, num_classes: int, pretrained: bool = False, pretrained_path: str | None = None,
                 drop_rate: float = 0.0, drop_path_rate: float | None = None, in_chans: int = 3,
                 model_kwargs: dict | None = None):
        return create_timm_model(self.model_name, num_classes, pretrained=pretrained,
                                 pretrained_path=pretrained_path, drop_rate=drop_rate,
                                 drop_path_rate=drop_path_rate, in_chans=in_chans, model_kwargs=model_kwargs)

    def check_params(self, params: dict) -> list[str]:
        """What ``validate`` asks before any training: with ``model_kwargs`` the architecture is built on the
        meta device (no memory, no weights), so an argument timm refuses is reported with the recipe."""
        if not params.get("model_kwargs"):
            return []
        import torch

        try:
            with torch.device("meta"):
                create_timm_model(self.model_name, 2, drop_rate=float(params.get("drop_rate") or 0.0),
                                  in_chans=int(params.get("in_chans", 3)), model_kwargs=params["model_kwargs"])
        except TrainingError as exc:
            return [str(exc)]
        except Exception as exc:   # timm's own refusal of a value (e.g. an output_stride it asserts against)
            return [f"backbone {self.model_name!r}: timm could not build it with model_kwargs "
                    f"{params['model_kwargs']} ({type(exc).__name__}: {exc})"]
        return []


curated = SimpleNamespace(**{name: TimmBackbone(model) for name, (model, _) in CURATED.items()})


def create_timm_model(model_name: str, num_classes: int, *, pretrained: bool = False,
                      pretrained_path: str | None = None, drop_rate: float = 0.0,
                      drop_path_rate: float | None = None, in_chans: int = 3, model_kwargs: dict | None = None):
    """``model_kwargs`` are the timm architecture's own arguments (e.g. ``channels`` and ``stem_width`` of a
    timm ResNet), passed to ``timm.create_model``; an argument the architecture does not take is refused with
    its name."""
    import timm

    if pretrained and pretrained_path:
        raise TrainingError(f"backbone {model_name!r}: set either pretrained=true (download) or "
                            f"pretrained_path={pretrained_path!r} (local file), not both")
    kwargs = {"num_classes": num_classes, "drop_rate": drop_rate, "in_chans": in_chans}
    if drop_path_rate is not None:
        kwargs["drop_path_rate"] = drop_path_rate
    extra = _model_kwargs(model_name, model_kwargs, set(kwargs) | {"pretrained", "drop_path_rate"})
    kwargs.update(extra)
    if pretrained:
        return _create_downloaded(model_name, kwargs)
    try:
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    except TypeError as e:
        if not extra:
            raise
        raise TrainingError(f"backbone {model_name!r}: timm could not build it with model_kwargs {extra} "
                            f"({e}); use the argument names of the timm architecture's constructor") from None
    if pretrained_path:
        load_local_weights(model, pretrained_path, model_name)
    return model


def _model_kwargs(model_name: str, model_kwargs, reserved: set[str]) -> dict:
    if model_kwargs is None:
        return {}
    if not isinstance(model_kwargs, dict) or not all(isinstance(k, str) for k in model_kwargs):
        raise TrainingError(f"backbone {model_name!r}: model_kwargs must be a mapping of argument name to value, "
                            f"got {model_kwargs!r}")
    clash = sorted(set(model_kwargs) & reserved)
    if clash:
        raise TrainingError(f"backbone {model_name!r}: model_kwargs {clash} are backbone params of their own; "
                            f"set them next to model_kwargs, not inside it")
    # YAML and JSON give lists where timm's signatures say tuples (channels, layers, ...)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in model_kwargs.items()}


def _local_weights_hint(model_name: str) -> str:
    return (f"Download the weights on a machine with network access (e.g. "
            f"`timm.create_model({model_name!r}, pretrained=True)` then `torch.save(model.state_dict(), "
            f"'{model_name.replace('/', '_')}.pth')`), copy the file here and set the backbone parameter "
            f"pretrained_path: /path/to/that.pth (and pretrained: false).")


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


def _create_downloaded(model_name: str, kwargs: dict):
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise TrainingError(f"backbone {model_name!r}: timm has no pretrained weights for this name, so "
                            f"pretrained=true would silently train from random weights. Pick a tagged name "
                            f"(`timm.list_pretrained('{model_name.split('.')[0]}*')`), set pretrained: false, "
                            f"or give pretrained_path.")
    offline = not network_available()
    try:
        if offline:
            # the Hugging Face cache may still hold the weights; never wait on the network
            import huggingface_hub.constants as hf_constants
            old = hf_constants.HF_HUB_OFFLINE
            hf_constants.HF_HUB_OFFLINE = True
            try:
                return timm.create_model(model_name, pretrained=True, **kwargs)
            finally:
                hf_constants.HF_HUB_OFFLINE = old
        return timm.create_model(model_name, pretrained=True, **kwargs)
    except Exception as exc:  # any download / cache failure is the user's to fix
        why = "no network connection (or HF_HUB_OFFLINE=1) and the weights are not cached" if offline \
            else f"download failed: {exc!r}"
        raise TrainingError(f"backbone {model_name!r}: cannot get pretrained weights: {why}. "
                            + _local_weights_hint(model_name)) from exc


def _read_state_dict(path: Path) -> dict:
    """A state dict from ``path``: safetensors, or a torch file read with ``weights_only=True`` (a file that
    needs unpickling of arbitrary objects is refused, never executed)."""
    from ensemble_core.train.checkpoint import safe_torch_load

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as exc:
            raise TrainingError(f"pretrained_path {str(path)!r}: not a readable safetensors file ({exc}); "
                                f"give a .safetensors/.pth/.pt file of the model's weights") from exc
    try:
        obj = safe_torch_load(path, "pretrained_path")
    except TrainingError as exc:
        raise TrainingError(f"{exc}. Save the weights as a plain state dict (torch.save(model.state_dict(), "
                            f"path)) or as .safetensors") from exc
    for key in ("state_dict_ema", "state_dict", "model", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TrainingError(f"pretrained_path {str(path)!r}: expected a state dict (or a checkpoint with "
                            f"'state_dict' / 'model'), got {type(obj).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_local_weights(model, pretrained_path: str, model_name: str = "?") -> dict:
    """Load a local checkpoint into ``model``, dropping weights whose shape differs (the classifier head).

    Returns ``{"loaded": n, "dropped": [...], "missing": [...]}``. Raises when the
    file does not exist or matches fewer than half of the model's tensors (wrong architecture).
    """
    path = Path(pretrained_path).expanduser()
    if not path.is_file():
        raise TrainingError(f"backbone {model_name!r}: pretrained_path {str(path)!r} does not exist; "
                            f"give the path of a .pth/.pt/.safetensors file")
    state = _read_state_dict(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    dropped = sorted(k for k in state if k in own and k not in usable)
    if len(usable) < 0.5 * len(own):
        raise TrainingError(f"backbone {model_name!r}: pretrained_path {str(path)!r} matches only "
                            f"{len(usable)} of {len(own)} tensors of the model; it was saved from a different "
                            f"architecture. Use weights of {model_name!r}.")
    result = model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "dropped": dropped, "missing": list(result.missing_keys)}


@hookimpl
def ensemble_register_backbones():
    return [ComponentSpec(name, "backbone", f"{__name__}:curated.{name}",
                          description=f"{desc} [timm {model}]")
            for name, (model, desc) in CURATED.items()]


@hookimpl
def ensemble_resolve_component(kind, name):
    """Any timm model name (with or without a pretrained tag) is a backbone."""
    if kind != "backbone":
        return None
    import timm

    base = name.split(".", 1)[0]
    if not (timm.is_model(name) or timm.is_model(base)):
        return None
    if "." in name and name not in timm.list_pretrained(name):
        return None
    return ComponentSpec(name, "backbone", TimmBackbone(name), description=f"timm model {name}",
                         origin=__name__)
