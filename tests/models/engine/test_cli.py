"""models/engine/cli.py: the dataclass-to-argparse helper of the training CLIs."""
import argparse
from dataclasses import dataclass, field

import pytest

from models.engine.cli import add_dataclass_args, command_line, config_from_args


@dataclass
class Demo:
    lr: float = 0.1
    mirror: bool = True
    heads: list[str] = field(default_factory=lambda: ["fan"])


def test_fields_round_trip_through_the_parser_and_the_command_line():
    p = argparse.ArgumentParser()
    add_dataclass_args(p, Demo)
    cfg = config_from_args(Demo, p.parse_args(["--lr", "0.5", "--no-mirror", "--heads", "gru", "fan"]))
    assert cfg == Demo(lr=0.5, mirror=False, heads=["gru", "fan"])
    line = command_line("python -m x", cfg)
    assert line == "python -m x --lr 0.5 --no-mirror --heads gru fan"
    assert config_from_args(Demo, p.parse_args(line.split()[3:])) == cfg


def test_a_negatively_named_bool_field_is_refused():
    """14b's trap: a field `no_prior` became --no-prior/--no-no-prior, and argparse read --no-prior as False."""
    @dataclass
    class Bad:
        no_prior: bool = False

    with pytest.raises(ValueError, match="no_prior"):
        add_dataclass_args(argparse.ArgumentParser(), Bad)
