"""models/engine/cli.py: the dataclass-to-argparse helper, the shared option groups and --head."""
import argparse
from dataclasses import dataclass, field

import pytest

from models.engine.cli import (DataOptions, TrainingOptions, add_dataclass_args, add_head_args, command_line,
    config_from_args, parse_head_args)


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
    """A field `no_prior` would become --no-prior/--no-no-prior, and argparse would read --no-prior as False."""
    @dataclass
    class Bad:
        no_prior: bool = False

    with pytest.raises(ValueError, match="no_prior"):
        add_dataclass_args(argparse.ArgumentParser(), Bad)


def test_head_takes_its_alias_and_refuses_a_disagreement(capsys):
    p = argparse.ArgumentParser()
    add_head_args(p, ("relation", "self", "gru"), "the head", alias_choices=("relation", "self"))
    assert parse_head_args(p, []).head is None
    assert parse_head_args(p, ["--head", "gru"]).head == "gru"
    assert parse_head_args(p, ["--attention", "self"]).head == "self"
    assert parse_head_args(p, ["--attention", "self", "--head", "self"]).head == "self"
    with pytest.raises(SystemExit) as e:
        parse_head_args(p, ["--attention", "relation", "--head", "gru"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --attention relation names another head than --head gru: give one of them\n"
    with pytest.raises(SystemExit):
        parse_head_args(p, ["--attention", "gru"])  # the alias names FAN's heads only


def test_the_trainers_share_one_default_for_each_common_option():
    from models.distill import DistillConfig
    from models.train import ClipsConfig, FramesConfig

    assert issubclass(FramesConfig, TrainingOptions) and issubclass(DistillConfig, TrainingOptions)
    assert issubclass(ClipsConfig, DataOptions)
    both = set(DistillConfig.__dataclass_fields__) & set(FramesConfig.__dataclass_fields__)
    # besides the shared group, only the run folder and the dataset list (a comma list for distill) are each their own
    assert both - set(TrainingOptions.__dataclass_fields__) == {"out", "datasets"}
    assert DistillConfig.out != FramesConfig.out
