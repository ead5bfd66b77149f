"""Command line: ``python -m ensemble_core`` / ``ensemble-core``.

    list [KIND] [PATTERN]     registered components (KIND plural: backbones, losses, ...)
    show KIND NAME            description, origin, parameters with defaults
    validate RECIPE_FILE      check a recipe (YAML / JSON) without building anything
    plugins                   loaded plugins and where they came from
    check-data DIR            preflight scan of a data set
    score SUBMISSION ANSWERS  macro F1, accuracy, per-task accuracy, confusion matrix
    ensemble RUN_DIR          recompute the ensemble and submission from cached member predictions
    predict RUN_DIR IMAGES    predict new images with a finished run or an export (submission.csv, no training)
    export RUN_DIR OUT        a finished run as one self-contained folder predict accepts (safetensors weights)
    compare RUN_DIR...        finished runs side by side (Markdown; CSV + per-class F1 PNG with --out)
    tune RECIPE --space F     sweep recipe fields with Optuna (the `tune` extra)

``list``, ``show``, ``validate`` and ``plugins`` never import torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from ensemble_core.errors import EnsembleCoreError, error_line
from ensemble_core.registry import KINDS, kind_from_plural, plural

# Commands implemented in other modules: name -> "module:function(argv) -> int"
EXTERNAL_COMMANDS: dict[str, tuple[str, str]] = {
    "check-data": ("ensemble_core.data.formats:cli_check_data",
                   "preflight scan of a data set (exit 1 on problems); --dataset image_folder|csv for other layouts"),
    "score": ("ensemble_core.ensemble.scoring:cli_main", "score a submission against answers"),
    "ensemble": ("ensemble_core.pipeline:cli_ensemble",
                 "recompute ensemble + submission of RUN_DIR from cached member predictions"),
    "predict": ("ensemble_core.predict:cli_predict",
                "predict images with a finished run or an exported ensemble (no training; RUN_DIR unchanged)"),
    "export": ("ensemble_core.predict:cli_export",
               "write a finished run as one self-contained folder that predict accepts"),
    "compare": ("ensemble_core.compare:cli_main", "compare finished run folders side by side"),
    "tune": ("ensemble_core.tune:cli_main", "sweep recipe fields with Optuna into one resumable study"),
}


def _registry():
    from ensemble_core.manager import get_registry
    return get_registry()


def cmd_list(args: argparse.Namespace) -> int:
    reg = _registry()
    kinds = list(KINDS)
    pattern = args.pattern
    if args.kind:
        kind = kind_from_plural(args.kind)
        if kind is None:
            # `list soft*` : a pattern over every kind
            if pattern is None and any(c in args.kind for c in "*?["):
                pattern = args.kind
            else:
                import difflib
                close = difflib.get_close_matches(args.kind, [plural(k) for k in KINDS], n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                print(f"error: unknown kind {args.kind!r}.{hint} Kinds: {', '.join(plural(k) for k in KINDS)}",
                      file=sys.stderr)
                return 2
        else:
            kinds = [kind]
    shown = 0
    for kind in kinds:
        specs = reg[kind].list(pattern)
        if not specs:
            continue
        print(f"{plural(kind)}:")
        width = max(len(s.name) for s in specs)
        for s in specs:
            print(f"  {s.name:<{width}}  {s.description}  [{s.origin}]")
        shown += len(specs)
    if not shown:
        print(f"no components match {pattern!r}" if pattern else "no components registered", file=sys.stderr)
        return 1
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    kind = kind_from_plural(args.kind)
    if kind is None:
        print(f"error: unknown kind {args.kind!r}; kinds: {', '.join(KINDS)}", file=sys.stderr)
        return 2
    spec = _registry()[kind].get(args.name)
    print(f"{spec.kind} {spec.name}")
    print(f"  {spec.description}")
    print(f"  origin:  {spec.origin}")
    factory = spec.factory if isinstance(spec.factory, str) else \
        f"{getattr(spec.factory, '__module__', '?')}:{getattr(spec.factory, '__qualname__', '?')}"
    print(f"  factory: {factory}")
    try:
        params = spec.parameters()
    except (ValueError, TypeError):
        params = []
    print("  parameters:" if params else "  parameters: (none)")
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            print(f"    **{p.name}  (passed through)")
            continue
        default = "required" if p.default is p.empty else f"default {p.default!r}"
        ann = f": {p.annotation}" if p.annotation is not p.empty and isinstance(p.annotation, str) else ""
        print(f"    {p.name}{ann}  ({default})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ensemble_core.recipe import Recipe, device_notes, shadowed_defaults, validate

    recipe = Recipe.load(args.recipe)
    registry = _registry()
    validate(recipe, registry=registry, source=args.recipe)
    members = recipe.plan()
    tasks = sorted({m.task_name for m in members})
    print(f"{args.recipe}: valid — {len(members)} member(s) over task(s) {', '.join(tasks)}")
    for note in device_notes(recipe, registry):
        print(f"  {note}")
    for warning in shadowed_defaults(recipe):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ensemble_core.manager import DISABLE_ENV, get_catalog

    cat = get_catalog()
    counts: dict[str, int] = {}
    for spec in cat.registry.all():
        counts[spec.origin] = counts.get(spec.origin, 0) + 1
    for name, source in cat.sources.items():
        plugin = cat.pm.get_plugin(name)
        where = getattr(plugin, "__file__", None) or repr(plugin)
        print(f"{name}  ({source}; {counts.get(name, 0)} component(s))\n    {where}")
    import os
    if os.environ.get(DISABLE_ENV):
        print(f"({DISABLE_ENV} is set: entry-point plugins were not loaded)")
    return 0


def _external(target: str) -> Callable[[Sequence[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ensemble-core", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("list", help="list registered components")
    p.add_argument("kind", nargs="?", help="a kind, plural (backbones, losses, ...); default: all")
    p.add_argument("pattern", nargs="?", help="wildcard over names, e.g. 'tf_efficientnet*'")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("show", help="show one component")
    p.add_argument("kind")
    p.add_argument("name")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("validate", help="validate a recipe file (YAML or JSON)")
    p.add_argument("recipe")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("plugins", help="loaded plugins and where they came from")
    p.set_defaults(func=cmd_plugins)
    for name, (_, help_) in EXTERNAL_COMMANDS.items():
        p = sub.add_parser(name, help=help_, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except (EnsembleCoreError, OSError) as exc:  # OSError: read-only folder, full disk, no permission
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 1


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in EXTERNAL_COMMANDS:
        return int(_external(EXTERNAL_COMMANDS[argv[0]][0])(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)
