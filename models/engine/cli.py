"""The one dataclass-to-argparse helper of the training CLIs (train, cv, distill, compare).

A config dataclass is the single source of truth for a command's options: each field becomes --field-name with the
field's default; bools get --x/--no-x, lists take one or more values. argparse itself stays in the entry points.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


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
