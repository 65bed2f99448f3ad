"""FMPN's experiment runs: the CK+ command line's switches."""
import argparse

from models.engine.cli import add_dataclass_args, config_from_args
from models.experiments.fmpn_runs import CkConfig


def test_ckplus_cli_switches_the_prior_off_and_the_fusion_start():
    p = argparse.ArgumentParser()
    add_dataclass_args(p, CkConfig)
    cfg = config_from_args(CkConfig, p.parse_args(["--no-prior", "--no-zero-fusion", "--folds", "3", "4"]))
    assert cfg.prior is False and cfg.zero_fusion is False and cfg.folds == [3, 4]
    assert config_from_args(CkConfig, p.parse_args([])).prior is True
