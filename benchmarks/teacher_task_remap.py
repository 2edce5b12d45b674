"""Can the shipped suite teacher teach the tasks it is at random level on, if told it is on another task? (issue 20)

    python -m benchmarks.teacher_task_remap [--episodes=50]

`zoo:minigrid_suite_small` scores at random level on KeyCorridorS3R1 and KeyCorridorS3R3 (its card: −1.1 and −0.4),
so the main job's re-engaging λ gives those tasks no teacher. A cheap way to give them one would be the teacher of a
related task (its keys-and-doors skill): the same network read with another task's one-hot in `task_id`. This plays
the teacher on the two KeyCorridor tasks with each task's one-hot in turn (greedy and sampled, the same episode seeds
for every row) and prints each row's normalised scores (0 = random, 100 = reference).
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch

from sf_kickstart.agents.agent import load_agent
from sf_kickstart.agents.evaluate import make_setup, parse_opts, play, summarize
from sf_kickstart.sources import shipped_dir
from sf_kickstart.suites.minigrid import TASK_NAMES, task_one_hot
from sf_kickstart.suites.registry import TASK_ID_KEY

TEACHER = "zoo:minigrid_suite_small"
TARGETS = ("KeyCorridorS3R1", "KeyCorridorS3R3")


def told(agent, task: str):
    """A copy of the agent that reads `task`'s one-hot in place of the env's task id (the agent is unchanged)."""
    vec, own = torch.from_numpy(task_one_hot(TASK_NAMES.index(task))), agent.view

    def view(obs):
        out = dict(own(obs))
        out[TASK_ID_KEY] = vec.expand_as(out[TASK_ID_KEY]).clone()
        return out

    renamed = copy.copy(agent)
    renamed.view = view
    return renamed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=50)
    args = ap.parse_args(argv)
    exp = shipped_dir(TEACHER)
    setup = make_setup(exp, parse_opts([exp, f"--episodes={args.episodes}", "--no_progress"]))
    teacher = load_agent(exp, *setup.spaces())
    envs = {t: setup.task_envs[t] for t in TARGETS}
    print("| task id the teacher reads | policy | " + " | ".join(TARGETS) + " |")
    print("|---|---|" + "---|" * len(TARGETS))
    for as_task in (None, *TASK_NAMES):
        agent = teacher if as_task is None else told(teacher, as_task)
        for greedy in (True, False):
            returns = play(agent, setup.env_cfg, envs, setup.episodes, setup.seed, greedy, setup.envs_per_task)
            scores = summarize(setup.env_cfg.env, returns, setup.seed)
            cells = " | ".join(f"{scores['tasks'][t]['score']:.1f}" for t in TARGETS)
            print(f"| {as_task or '(its own)'} | {'greedy' if greedy else 'sampled'} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
