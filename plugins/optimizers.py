"""Optimizers: every optimizer of ``timm.optim`` by name, built by ``timm.optim.create_optimizer_v2``.

Factory: ``factory(parameters, **params)``. The names of :data:`TIMM_OPTIMIZERS` are registered
with lazy factories (``list optimizers 'la*'`` never imports torch or timm); any other name timm
knows (a newer timm, ``bnbadamw`` with bitsandbytes installed, ``lookahead_adamw``) resolves on demand
through :func:`ensemble_resolve_component`, like backbones. A component's parameters are the real
ones: the optimizer class's own keyword arguments plus what ``create_optimizer_v2`` adds (``lr``,
``weight_decay``, ``momentum`` where the optimizer has one), with timm's defaults, so ``validate``
refuses a parameter the optimizer does not take.

The seed's names ``adam``, ``adamw`` and ``sgd`` are timm's optimizers of the same name (the same
``torch.optim`` classes) with the seed's defaults (:data:`SEED_DEFAULTS`): recipes written for them
build the same optimizer with the same settings as before.
"""
from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any, Mapping

from ensemble_core.hookspecs import hookimpl
from ensemble_core.registry import ComponentSpec, LazyFactory

# timm.optim.list_optimizers(with_description=True) of timm 1.0.31, less the names whose class lives in
# an optional package (bitsandbytes, apex: those still resolve on demand when the package is there) and
# the second-order ones (adahessian: it needs backward(create_graph=True), which the training loop does not do).
# tests/test_timm_components.py checks this list against the installed timm.
TIMM_OPTIMIZERS: dict[str, str] = {
    'adabelief': 'Adapts learning rate based on gradient prediction error',
    'adadelta': 'torch.optim.Adadelta, Adapts learning rates based on running windows of gradients',
    'adafactor': 'Memory-efficient implementation of Adam with factored gradients',
    'adafactorbv': 'Big Vision variant of Adafactor with factored gradients, half precision momentum',
    'adafactorbvc': 'Adafactor Big Vision with corrected weight decay (lr²/max_lr or lr/max_lr scaling)',
    'adagrad': 'torch.optim.Adagrad, Adapts learning rates using cumulative squared gradients',
    'adam': 'torch.optim.Adam, Adaptive Moment Estimation',
    'adamax': 'torch.optim.Adamax, Adam with infinity norm for more stable updates',
    'adamc': 'AdamW with corrected weight decay (lr²/max_lr scaling)',
    'adamp': 'Adam with built-in projection to unit norm sphere',
    'adamuon': 'AdaMuon: Muon with adaptive second moment estimation on orthogonalized directions',
    'adamw': 'torch.optim.AdamW, Adam with decoupled weight decay',
    'adamwlegacy': 'legacy impl of AdamW that pre-dates inclusion to torch.optim',
    'adan': 'Adaptive Nesterov Momentum Algorithm',
    'adanw': 'Adaptive Nesterov Momentum with decoupled weight decay',
    'adopt': 'Modified Adam that can converge with any β2 with the optimal rate',
    'adoptc': 'Adopt with corrected decoupled weight decay (lr²/max_lr scaling)',
    'adoptw': 'Modified AdamW (decoupled decay) that can converge with any β2 with the optimal rate',
    'cadafactor': 'Cautious Adafactor',
    'cadafactorbv': 'Cautious Big Vision Adafactor',
    'cadafactorbvc': 'Cautious Adafactor Big Vision with corrected weight decay',
    'cadamc': 'Cautious AdamW with corrected weight decay (lr²/max_lr scaling)',
    'cadamp': 'Add the spherical cautious optimizer and the standard cautious optimizer to AdamP',
    'cadamw': 'Cautious AdamW',
    'cadan': 'Cautious Adaptive Nesterov Momentum Algorithm',
    'cadanw': 'Cautious Adaptive Nesterov Momentum with decoupled weight decay',
    'cadopt': 'Cautious Adopt',
    'cadoptc': 'Cautious Adopt with corrected decoupled weight decay (lr²/max_lr scaling)',
    'cadoptw': 'Cautious AdoptW (decoupled decay)',
    'clamb': 'Cautious LAMB',
    'clambw': 'Cautious LAMB with decoupled weight decay',
    'claprop': 'Cautious LaProp',
    'clion': 'Cautious Lion',
    'clionc': 'Cautious Lion with corrected weight decay (lr²/max_lr scaling)',
    'cmars': 'Cautious MARS',
    'cnadamc': 'Cautious NAdamW with corrected weight decay (lr²/max_lr scaling)',
    'cnadamw': 'Cautious NAdamW',
    'crmsproptf': 'Cautious TensorFlow-style RMSprop',
    'csgdc': 'Cautious SGD with corrected decoupled weight decay (lr²/max_lr scaling)',
    'csgdp': 'Add the spherical cautious optimizer and the standard cautious optimizer to SGDP',
    'csgdw': 'Cautious SGD with decoupled weight decay and Nesterov momentum',
    'kron': 'PSGD optimizer with Kronecker-factored preconditioner',
    'kronc': 'PSGD Kron with corrected decoupled weight decay (lr²/max_lr scaling)',
    'kronw': 'PSGD optimizer with Kronecker-factored preconditioner and decoupled weight decay',
    'lamb': 'Layer-wise Adaptive Moments for batch optimization',
    'lambc': 'LAMB with trust ratio clipping for stability',
    'lambcd': 'LAMB with corrected decoupled weight decay (lr²/max_lr scaling)',
    'lambcw': 'LAMB with trust ratio clipping for stability and decoupled decay',
    'lambw': 'LAMB with decoupled weight decay',
    'laprop': 'Separating Momentum and Adaptivity in Adam',
    'lapropc': 'LaProp with corrected weight decay (lr²/max_lr scaling)',
    'larc': 'LARS with trust ratio clipping for stability',
    'lars': 'Layer-wise Adaptive Rate Scaling',
    'lion': 'Evolved Sign Momentum optimizer for improved convergence',
    'lionc': 'Lion with corrected weight decay (lr²/max_lr scaling)',
    'madgrad': 'Momentum-based Adaptive gradient method',
    'madgradw': 'MADGRAD with decoupled weight decay',
    'mars': 'Unleashing the Power of Variance Reduction for Training Large Models',
    'momentum': 'torch.Optim Stochastic Gradient Descent (SGD) with classical momentum',
    'muon': 'MomentUm Orthogonalized by Newton-schulz with AdamW fallback for 1D params',
    'nadam': 'torch.optim.NAdam, Adam with Nesterov momentum',
    'nadamc': 'NAdamW with corrected weight decay (lr²/max_lr scaling)',
    'nadamlegacy': 'legacy impl of NAdam that pre-dates inclusion in torch.optim',
    'nadamuon': 'AdaMuon with Nesterov momentum and NAdamW fallback for 1D params',
    'nadamw': 'Adam with Nesterov momentum and decoupled weight decay, mlcommons/algorithmic-efficiency impl',
    'nesterov': 'torch.Optim Stochastic Gradient Descent (SGD) with Nesterov momentum',
    'nesterovw': 'SGD with decoupled weight decay and Nesterov momentum',
    'nlarc': 'LARS with Nesterov momentum & trust ratio clipping',
    'nlars': 'LARS with Nesterov momentum',
    'nmuon': 'MomentUm Orthogonalized by Newton-schulz with Nesterov and NAdamW fallback for 1D params',
    'novograd': 'Normalized Adam with L2 norm gradient normalization',
    'novogradc': 'NovoGrad with corrected decoupled weight decay (lr²/max_lr scaling)',
    'novogradw': 'NovoGrad with decoupled weight decay',
    'radabelief': 'Rectified AdaBelief with variance adaptation',
    'radam': 'torch.optim.RAdam, Rectified Adam with variance adaptation',
    'radamlegacy': 'legacy impl of RAdam that predates inclusion in torch.optim',
    'radamw': 'torch.optim.RAdamW, Rectified Adam with variance adaptation and decoupled weight decay',
    'rmsprop': 'torch.optim.RMSprop, Root Mean Square Propagation',
    'rmsproptf': 'TensorFlow-style RMSprop implementation, Root Mean Square Propagation',
    'rmsproptfc': 'RMSprop TF-style with corrected decoupled weight decay (lr²/max_lr scaling)',
    'rmsproptfw': 'TensorFlow-style RMSprop with decoupled weight decay',
    'sgd': 'torch.Optim Stochastic Gradient Descent (SGD) with Nesterov momentum',
    'sgdc': 'SGD with corrected decoupled weight decay (lr²/max_lr scaling)',
    'sgdp': 'SGD with built-in projection to unit norm sphere',
    'sgdw': 'SGD with decoupled weight decay and Nesterov momentum',
}

# the seed's names: timm's optimizer of the same name with the defaults the seed's factories had
SEED_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"lr": 1e-3, "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "weight_decay": 0.01},
    "sgd": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "nesterov": True},
}
SEED_DESCRIPTIONS = {
    "adam": "Adam, torch.optim via timm (seed's gender/age models: lr 1e-5, weight_decay 1e-5)",
    "adamw": "AdamW, decoupled weight decay, torch.optim via timm (seed's mask model: weight_decay 0.01)",
    "sgd": "SGD with Nesterov momentum, torch.optim via timm (Nesterov off when momentum is 0)",
}

# create_optimizer_v2 arguments a recipe cannot use: the engine passes parameters (not a model), so the
# model-based grouping options would be ignored, and a callable is not recipe data
NOT_RECIPE_ARGS = ("params", "self", "model_or_params", "opt", "param_group_fn", "filter_bias_and_bn",
                   "layer_decay", "layer_decay_min_scale", "layer_decay_no_opt_scale", "fallback_list",
                   "fallback_no_weight_decay")


class TimmOptimizer(LazyFactory):
    """Factory for one timm optimizer: ``TimmOptimizer("lion")(parameters, lr=1e-4, ...)``.

    ``inspect.signature`` of it is the real parameter list (imports timm on first use)."""

    def __init__(self, opt_name: str, defaults: Mapping[str, Any] | None = None):
        super().__init__(opt_name)
        self.opt_name = opt_name
        self.defaults = dict(defaults or {})

    def make_signature(self) -> inspect.Signature:
        return optimizer_signature(self.opt_name, self.defaults)

    def __call__(self, parameters, **params):
        from timm.optim import create_optimizer_v2

        kwargs = {**self.defaults, **params}
        if isinstance(kwargs.get("betas"), list):  # YAML / JSON give lists; torch keeps tuples
            kwargs["betas"] = tuple(kwargs["betas"])
        names = self.__signature__.parameters
        if "nesterov" in names and "momentum" in names:
            momentum = kwargs.get("momentum", names["momentum"].default)
            if isinstance(momentum, (int, float)) and momentum <= 0:
                kwargs["nesterov"] = False  # Nesterov needs momentum (torch refuses the pair)
        return create_optimizer_v2(parameters, opt=self.opt_name, **kwargs)


def optimizer_signature(opt_name: str, overrides: Mapping[str, Any] | None = None) -> inspect.Signature:
    """``(parameters, *, lr, weight_decay, [momentum], <the class's own arguments>)`` with the defaults
    ``create_optimizer_v2`` applies, then ``overrides``."""
    from timm.optim import get_optimizer_class, get_optimizer_info

    base = opt_name.lower().split("_")[-1]  # lookahead_adamw -> adamw
    info = get_optimizer_info(base)
    cls = get_optimizer_class(info, bind_defaults=False)
    own = inspect.signature(cls).parameters
    P = inspect.Parameter
    defaults: dict[str, Any] = {}
    if "lr" in own:
        defaults["lr"] = own["lr"].default
    defaults["weight_decay"] = 0.0
    if info.has_momentum:
        defaults["momentum"] = 0.9
    extra = None
    for name, p in own.items():
        if name in NOT_RECIPE_ARGS or name in defaults or p.kind == P.VAR_POSITIONAL:
            continue
        if p.kind == P.VAR_KEYWORD:
            extra = P(name, P.VAR_KEYWORD)
            continue
        if (name == "eps" and not info.has_eps) or (name == "betas" and not info.has_betas):
            continue  # create_optimizer_v2 would drop them silently
        defaults[name] = p.default
    defaults.update(info.defaults or {})
    defaults.update(overrides or {})
    params = [P("parameters", P.POSITIONAL_OR_KEYWORD)]
    params += [P(n, P.KEYWORD_ONLY, default=P.empty if _required(d) else d) for n, d in defaults.items()]
    if extra is not None:
        params.append(extra)
    return inspect.Signature(params)


def _required(default: Any) -> bool:
    """torch's ``lr=required`` sentinel (SGDP, ...) means the recipe must set it."""
    return default is inspect.Parameter.empty or type(default).__name__ == "_RequiredParameter"


timm_optimizers = SimpleNamespace(
    **{name: TimmOptimizer(name) for name in TIMM_OPTIMIZERS if name not in SEED_DEFAULTS},
    **{name: TimmOptimizer(name, defaults) for name, defaults in SEED_DEFAULTS.items()})


@hookimpl
def ensemble_register_optimizers():
    return [ComponentSpec(name, "optimizer", f"{__name__}:timm_optimizers.{name}",
                          description=SEED_DESCRIPTIONS.get(name) or f"{desc} [timm]")
            for name, desc in sorted(TIMM_OPTIMIZERS.items())]


@hookimpl
def ensemble_resolve_component(kind, name):
    """Any other optimizer name timm knows (``lookahead_<name>`` wraps one in Lookahead)."""
    if kind != "optimizer":
        return None
    from timm.optim import list_optimizers

    from timm.optim import get_optimizer_info

    base = name.lower().split("_")
    if name != name.lower() or base[-1] not in list_optimizers() or (len(base) > 1 and base[:-1] != ["lookahead"]):
        return None
    if get_optimizer_info(base[-1]).second_order:
        return None
    return ComponentSpec(name, "optimizer", TimmOptimizer(name), description=f"timm optimizer {name}",
                         origin=__name__)
