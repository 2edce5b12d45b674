"""python -m sf_kickstart.zoo.ship EXPERIMENT NAME --command="..." [--episodes=100]

Turns a trained experiment into a shipped zoo teacher `sf_kickstart/zoo/NAME/`: its config.json, its latest checkpoint
without the optimizer state (a teacher needs only the weights and the observation normaliser), its evaluation
(`python -m sf_kickstart.evaluate`, greedy, cached in evaluation/) and a card (README.md: env, architecture, frames,
the command that trained it, the evaluated per-task scores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

import torch

from sf_kickstart.agents.evaluate import evaluate_experiment, parse_opts, render_markdown
from sf_kickstart.evaluation_cache import EVAL_DIR, cache_path, write_json
from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.experiments import latest_checkpoint
from sf_kickstart.agents.zoo import SCORE_KINDS, architecture
from sf_kickstart.sources import ZOO_DIR, ZOO_PREFIX


def copy_stripped(src: str, dst: str) -> str:
    os.makedirs(os.path.join(dst, "checkpoint_p0"), exist_ok=True)
    shutil.copyfile(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))
    ckpt_path = latest_checkpoint(src, 0)
    ckpt = load_checkpoint(ckpt_path)
    ckpt.pop("optimizer", None)
    target = os.path.join(dst, "checkpoint_p0", os.path.basename(ckpt_path))
    torch.save(ckpt, target)
    return target


def score_label(scores: dict) -> str:
    """The card's row of the headline number: `evaluated suite score`, or `evaluated mean return` for an env without
    a suite score (MuJoCo)."""
    return f"evaluated {SCORE_KINDS[scores['score_kind']]}"


def card(name: str, report: dict, cfg, command: str) -> str:
    s = report["student"]
    return "\n".join([
        f"# Zoo teacher `{name}`",
        "",
        f"Use it as `--teacher={ZOO_PREFIX}{name}` (or in a `--teachers` map), watch it with "
        f"`python -m sf_kickstart.enjoy --experiment={ZOO_PREFIX}{name} --save_video`.",
        "",
        "| | |",
        "|---|---|",
        f"| env | `{cfg.env}` |",
        f"| architecture | {architecture(cfg)} |",
        f"| frames | {s['env_steps']} |",
        f"| checkpoint | `{s['checkpoint']}` (optimizer state removed) |",
        f"| {score_label(s)} | {s['suite_score']:.1f} [{s['suite_score_ci'][0]:.1f}, {s['suite_score_ci'][1]:.1f}] |",
        "",
        "Trained with (on a 2-core CPU machine shared with other jobs):",
        "",
        "```bash",
        command,
        "```",
        "",
        "Evaluated with `python -m sf_kickstart.evaluate zoo:" + name + f" --episodes={s['episodes']}`:",
        "",
        render_markdown(report).split("\n", 2)[2],
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sf_kickstart.zoo.ship", description=__doc__)
    parser.add_argument("experiment")
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the command that trained it (goes on the card)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--out_dir", default=ZOO_DIR, help="NAME/ is made here (default: the package's zoo; another "
                                                           "dir to try it without touching the package)")
    opts = parser.parse_args(argv)
    dst = os.path.join(opts.out_dir, opts.name)
    if os.path.exists(dst):
        shutil.rmtree(dst)
    copy_stripped(opts.experiment, dst)
    eval_opts = parse_opts([dst, f"--episodes={opts.episodes}", "--force", "--no_teachers"])  # evaluate's defaults
    report = evaluate_experiment(dst, eval_opts)
    shipped_cache = os.path.join(dst, EVAL_DIR, os.path.basename(cache_path(dst)))
    write_json(shipped_cache, report["student"])  # the package's read-only cache: the numbers on the card
    from sf_kickstart.agents.agent import experiment_cfg

    with open(os.path.join(dst, "README.md"), "w") as f:
        f.write(card(opts.name, report, experiment_cfg(dst), opts.command))
    print(open(os.path.join(dst, "README.md")).read())
    assert os.path.isfile(shipped_cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
