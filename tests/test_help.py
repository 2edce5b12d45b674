"""Each command's `--help` lists every flag it takes and exits 0, with or without `--env` (in-process: fast lane)."""

from __future__ import annotations

import argparse
from typing import Callable, List

import pytest


def _help(main: Callable, argv: List[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr().out
    assert exc.value.code in (0, None), out
    return out


def _flags(*adders: Callable[[argparse.ArgumentParser], None]) -> List[str]:
    """The long flags that `adders` add to a parser: what a command's help must list."""
    parser = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(parser)
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


def _ours() -> List[str]:
    from sf_kickstart.sf.setup import add_eval_args, add_kickstart_args

    return _flags(add_kickstart_args, add_eval_args)


def _missing(out: str, flags: List[str]) -> List[str]:
    return [f for f in flags if f"{f} " not in out and f"{f}\n" not in out]


SF_FLAGS = ["--env", "--experiment", "--train_dir", "--learning_rate", "--num_workers", "--train_for_env_steps"]


@pytest.mark.parametrize("env", [[], ["--env=minigrid_suite"]], ids=["no_env", "env"])
def test_train_help_lists_sf_and_kickstart_flags(env, capsys):
    from sf_kickstart.train import main

    out = _help(main, ["--help", *env], capsys)
    assert out.startswith("usage: python -m sf_kickstart.train")
    assert not _missing(out, SF_FLAGS + _ours())
    assert ("--env=ENV --help" in out) == (not env)  # without --env: says where the env's own flags are


@pytest.mark.parametrize("env", [[], ["--env=CartPole-v1"]], ids=["no_env", "env"])
def test_tune_help_lists_its_own_flags_too(env, capsys):
    from sf_kickstart.populations.tune.cli import add_tune_args, main

    out = _help(main, [*env, "--help"], capsys)
    assert out.startswith("usage: python -m sf_kickstart.tune")
    tune_flags = _flags(add_tune_args)
    assert {"--ray_address", "--tune_metric", "--tune_synch"} <= set(tune_flags)
    assert not _missing(out, tune_flags + SF_FLAGS + _ours() + ["--num_policies", "--pbt_period_env_steps"])


@pytest.mark.parametrize("exp", [[], ["--experiment=zoo:minigrid_suite_small"]], ids=["no_experiment", "zoo"])
def test_enjoy_help_lists_sf_enjoy_flags(exp, capsys):
    from sf_kickstart.agents.enjoy import main

    out = _help(main, ["--help", *exp], capsys)
    assert out.startswith("usage: python -m sf_kickstart.enjoy")
    enjoy = ["--save_video", "--video_frames", "--video_name", "--max_num_frames", "--max_num_episodes", "--no_render",
             "--push_to_hub", "--hf_repository", "--load_checkpoint_kind", "--eval_deterministic"]
    assert not _missing(out, enjoy + ["--experiment", "--train_dir", "--env"])


def test_evaluate_help(capsys):
    from sf_kickstart.agents.evaluate import add_args, main

    out = _help(main, ["--help"], capsys)
    flags = _flags(add_args)
    assert {"--episodes", "--teacher", "--no_teachers"} <= set(flags)
    assert not _missing(out, flags)


def test_zoo_help(capsys):
    from sf_kickstart.agents.zoo import main

    out = _help(main, ["--help"], capsys)
    assert not _missing(out, ["--train_dir", "--env"])


def test_report_help(capsys):
    from sf_kickstart.report.cli import main

    out = _help(main, ["--help"], capsys)
    assert not _missing(out, ["--out", "--metric", "--budgets", "--baseline", "--pbt_top", "--exclude_running", "--methods"])
