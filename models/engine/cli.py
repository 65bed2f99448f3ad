"""The command-line parts the training tools share: the dataclass-to-argparse helper, the option groups several
configs have in common, and the --head option.

A config dataclass is the single source of truth for a command's options: each field becomes --field-name with the
field's default; bools get --x/--no-x, lists take one or more values. argparse itself stays in the entry points.
Options that several commands take are written once here: a config inherits DataOptions (or TrainingOptions) instead
of repeating their fields, and a hand-written parser calls add_data_args or add_card_args for the data and model
options and add_head_args (then parse_head_args) for --head.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from app.paths import ROOT, data_root

T = TypeVar("T")

CACHE_DIR = ROOT / "cache"  # the aligned-crop, landmark and feature caches (git-ignored)


@dataclass
class DataOptions:
    """Where a command reads the shared datasets and keeps its caches."""
    data: str = str(data_root())
    cache_dir: str = str(CACHE_DIR)


@dataclass
class TrainingOptions(DataOptions):
    """What the two trainers of the ResNet18 embedder share (models.train frames, models.distill pretrain): the
    student of a distillation is the embedder that `models.train frames --init` goes on to fine-tune, so both start
    from the same input, SGD schedule and run settings."""
    input_size: int = 64
    color: str = "gray"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    threads: int = 0                   # torch intra-op threads (distill: OpenCV's too); 0 = the libraries' defaults
    resume: bool = False               # continue the run in --out from its last.pt
    device: str = "auto"


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def add_dataclass_args(p: argparse.ArgumentParser, cls, skip: tuple[str, ...] = (),
                       choices: dict[str, tuple[str, ...]] | None = None) -> None:
    """One option per field of cls (except `skip`); `choices` restricts a field's (or a list field's items') values."""
    choices = choices or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = _default(f)
        extra = {"choices": choices[f.name]} if f.name in choices else {}
        if isinstance(default, bool):
            if f.name.startswith("no_"):  # --no-x would be both this field and the negation of a field x
                raise ValueError(f"{cls.__name__}.{f.name}: name a bool field positively (e.g. "
                                 f"{f.name[3:]}=True): argparse reads --{f.name.replace('_', '-')} as its negation")
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, list):
            item = type(default[0]) if default else str
            p.add_argument(flag, nargs="+", type=item, default=default, **extra)
        else:
            p.add_argument(flag, type=type(default), default=default, **extra)


def config_from_args(cls: type[T], args: argparse.Namespace | dict, **override) -> T:
    """The dataclass from parsed options (keys that are not fields are ignored)."""
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names}, **override)


def command_line(prog: str, cfg, skip: tuple[str, ...] = ()) -> str:
    """The command line that reproduces cfg: settings left at their defaults (and `skip`) are omitted."""
    defaults = {f.name: _default(f) for f in dataclasses.fields(cfg)}
    parts = [prog]
    for name, value in dataclasses.asdict(cfg).items():
        if name in skip or value == defaults[name]:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            parts.append(f"{flag} {' '.join(str(v) for v in value)}")
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


# ----------------------------------------------------------------------------------------------- argparse groups
def add_data_args(p: argparse.ArgumentParser, cache_help: str = "aligned-crop and landmark caches") -> None:
    """--data and --cache-dir, defaulting as DataOptions does, for a hand-written parser."""
    p.add_argument("--data", type=Path, default=data_root(),
                   help="shared data root (default: $FANLIVE_DATA or ../shared/data)")
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help=f"{cache_help} (default: cache/ in the checkout)")


def add_card_args(p: argparse.ArgumentParser) -> None:
    """--weights (a model's card or one of its graphs) and the data options of a command that measures a model."""
    p.add_argument("--weights", type=Path, required=True, help="any .onnx or .json card of the model")
    add_data_args(p)


# ----------------------------------------------------------------------------------------------- --head
def add_head_args(p: argparse.ArgumentParser, choices: tuple[str, ...], help: str,
                  alias_choices: tuple[str, ...] | None = None) -> None:
    """--head picks a head by its card key (app.recognition.card.HEAD_TYPES); --attention, its older name, stays as an
    alias over `alias_choices` (default: the same choices). Parse with parse_head_args, which folds the alias in."""
    p.add_argument("--head", choices=choices, default=None, help=help)
    p.add_argument("--attention", dest="attention_alias", choices=alias_choices or choices, default=None,
                   help="an alias of --head (its older name); an error when it names another head than --head")


def resolve_head(args: argparse.Namespace) -> str | None:
    """--head with its alias --attention folded in (args.head set); the one error line when they disagree."""
    alias = getattr(args, "attention_alias", None)
    if alias is not None:
        if args.head is not None and args.head != alias:
            return f"--attention {alias} names another head than --head {args.head}: give one of them"
        args.head = alias
    return None


def parse_head_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """p.parse_args(argv) with --attention folded into --head; when the two disagree, one error line and exit status
    2, as for any other bad option."""
    args = p.parse_args(argv)
    if conflict := resolve_head(args):
        p.exit(2, f"error: {conflict}\n")
    return args
