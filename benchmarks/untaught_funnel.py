"""What a student does on KeyCorridorS3R1, the main job's task its teacher cannot teach (issue 20), checkpoint by
checkpoint: how far it gets along the task's chain of sub-goals, and how likely it is to take the oracle's action at
each kind of step.

    python -m benchmarks.untaught_funnel --runs=ks_main_s0:DIR,scratch_fixed_s0:DIR --marks=100000,250000,500000
    python -m benchmarks.untaught_funnel --analyze_only            # the report again from its JSON

A run is `name:DIR`, DIR an experiment dir or a folder of its `checkpoint_*.pth` files (copies taken while it trained:
Sample Factory keeps only the latest few); at each mark the newest checkpoint at or below it is played. KeyCorridorS3R1:
a key in one side room behind a closed door, a ball behind a locked door; the episode succeeds when the agent picks up
the ball, which it can only do with empty hands, so it must pick up the key, open the locked door, **drop the key**
(MiniGrid's `drop`, an action no other task of the suite needs) and pick up the ball.

Per checkpoint, `--episodes` sampled episodes (seeds 20000.., the policy's own sampled actions, as in training):
  key        the agent carried the key at some step
  unlocked   the locked door was opened
  at ball    it faced the ball while carrying the key (everything done but the swap)
  dropped    it dropped the key after the door was open
  success    it picked up the ball
  action %   the share of each action over the episodes' steps
and along the oracle's shortest plans of `--plans` episodes (seeds 10000..; `benchmarks.minigrid_reference_scores`),
the policy's mean probability of the oracle's action at the oracle's forward and drop steps (the recurrent state follows
the plan). Written to `benchmarks/results/untaught_funnel_cpu.md` / `.json`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from typing import Dict, List, Optional

import gymnasium as gym
import numpy as np
import torch
from sample_factory.algo.sampling.inference_worker import prepare_and_normalize_obs

from benchmarks.minigrid_reference_scores import DROP, FORWARD, oracle_plan
from sf_kickstart.agents.agent import load_agent
from sf_kickstart.paths import REPO_ROOT
from sf_kickstart.suites import minigrid as suite

TASK = "KeyCorridorS3R1"
ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
STAGES = ("key", "unlocked", "at ball", "dropped", "success")
CKPT_RE = re.compile(r"checkpoint_\d+_(\d+)\.pth$")
OUT = os.path.join(REPO_ROOT, "benchmarks", "results")


def checkpoints(path: str) -> Dict[int, str]:
    """{env frames: checkpoint file} of an experiment dir (policy 0) or a folder of checkpoint copies."""
    found = glob.glob(os.path.join(path, "checkpoint_p0", "checkpoint_*.pth")) + glob.glob(
        os.path.join(path, "checkpoint_*.pth"))
    return {int(m.group(1)): f for f in found if (m := CKPT_RE.search(os.path.basename(f)))}


def at_mark(found: Dict[int, str], mark: int) -> Optional[tuple]:
    below = [f for f in found if f <= mark]
    return (max(below), found[max(below)]) if below else None


class Policy:
    """A checkpoint on the suite's spaces, stepped one observation at a time."""

    def __init__(self, exp_dir: str, checkpoint: str):
        self.agent = load_agent(exp_dir, suite.observation_space(), gym.spaces.Discrete(suite.NUM_ACTIONS),
                                checkpoint=checkpoint)
        self.reset()

    def reset(self) -> None:
        self.rnn = torch.zeros(1, self.agent.rnn_size)

    @torch.no_grad()
    def step(self, obs) -> tuple:
        """(action probabilities, a sampled action) for one observation; the recurrent state moves on."""
        a = self.agent
        batch = a.view({k: torch.from_numpy(np.asarray(obs[k])[None]) for k in a.input_keys})
        out = a.model(prepare_and_normalize_obs(a.model, batch), self.rnn)
        self.rnn = out["new_rnn_states"]
        return torch.softmax(out["action_logits"], -1)[0].numpy(), int(out["actions"][0])


def episode_stages(policy: Policy, env: suite.MinigridTaskEnv, seed: int, actions: np.ndarray) -> Dict[str, bool]:
    u = env._raw
    obs, _ = env.reset(seed=seed)
    policy.reset()
    locked = [c for c in u.grid.grid if c is not None and c.type == "door" and c.is_locked]
    seen = dict.fromkeys(STAGES, False)
    done = False
    while not done:
        _, a = policy.step(obs)
        actions[a] += 1
        carrying_key = u.carrying is not None and u.carrying.type == "key"
        seen["key"] |= carrying_key
        seen["at ball"] |= carrying_key and u.grid.get(*u.front_pos) is u.obj
        obs, reward, terminated, truncated, _ = env.step(a)
        seen["unlocked"] |= any(d.is_open for d in locked)
        seen["dropped"] |= a == DROP and seen["unlocked"] and carrying_key and u.carrying is None
        seen["success"] |= reward > 0
        done = terminated or truncated
    return seen


def oracle_step_probs(policy: Policy, env: suite.MinigridTaskEnv, seeds) -> Dict[str, float]:
    """Mean probability of the oracle's action at its forward and its drop steps, along its plans."""
    probs = {FORWARD: [], DROP: []}
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        policy.reset()
        for a in oracle_plan(env.env):
            p, _ = policy.step(obs)
            if a in probs:
                probs[a].append(float(p[a]))
            obs, *_ = env.step(a)
    return {f"p({ACTIONS[a]}) at the oracle's {ACTIONS[a]}": float(np.mean(v)) for a, v in probs.items()}


def measure(exp_dir: str, checkpoint: str, episodes: int, plans: int) -> dict:
    torch.manual_seed(0)
    policy, env = Policy(exp_dir, checkpoint), suite.MinigridTaskEnv(TASK)
    actions = np.zeros(suite.NUM_ACTIONS)
    counts = dict.fromkeys(STAGES, 0)
    for ep in range(episodes):
        for stage, hit in episode_stages(policy, env, 20_000 + ep, actions).items():
            counts[stage] += int(hit)
    out = dict(episodes=episodes, stages=counts,
               action_share={a: float(x) for a, x in zip(ACTIONS, 100 * actions / actions.sum())})
    out.update(oracle_step_probs(policy, env, range(10_000, 10_000 + plans)))
    env.close()
    return out


def exp_dir_of(path: str) -> str:
    """The experiment dir whose config.json plays the checkpoints: DIR itself, or for a folder of copies the path
    written in its `experiment` file."""
    if os.path.isfile(os.path.join(path, "config.json")):
        return path
    pointer = os.path.join(path, "experiment")
    if os.path.isfile(pointer):
        with open(pointer) as f:
            return f.read().strip()
    raise SystemExit(f"{path}: neither an experiment dir (config.json) nor a folder of copies with an 'experiment' file")


def run(args) -> dict:
    results = {}
    for spec in args.runs:
        name, path = spec.split(":", 1)
        exp_dir, found = exp_dir_of(path), checkpoints(path)
        played = set()
        for mark in args.marks:
            hit = at_mark(found, mark)
            if hit is None or hit[0] in played:  # none yet, or the one an earlier mark played (the run stopped)
                continue
            frames, ckpt = hit
            played.add(frames)
            r = measure(exp_dir, ckpt, args.episodes, args.plans)
            results.setdefault(name, {})[str(mark)] = dict(r, frames=frames, checkpoint=os.path.basename(ckpt))
            print(f"[untaught_funnel] {name} @{mark}: {r['stages']}", flush=True)
    return results


def report(results: dict, args) -> str:
    lines = ["# KeyCorridorS3R1, the task the main job's teacher cannot teach: the student's sub-goals", "",
             f"`python -m benchmarks.untaught_funnel --runs=... --marks={','.join(map(str, args.marks))} "
             f"--episodes={args.episodes} --plans={args.plans}`", "",
             f"Sampled episodes reaching each stage (of {args.episodes}); action shares (%) over their steps; the "
             f"probability of the oracle's action at its forward and drop steps ({args.plans} plans).", "",
             "| run | frames | " + " | ".join(STAGES) + " | " + " | ".join(ACTIONS) + " | p(fwd) | p(drop) |",
             "|---|---|" + "---|" * (len(STAGES) + len(ACTIONS) + 2)]
    for name, marks in results.items():
        for mark, r in marks.items():
            probs = [v for k, v in r.items() if k.startswith("p(")]
            lines.append(f"| {name} | {r['frames']} | " + " | ".join(str(r["stages"][s]) for s in STAGES) + " | "
                         + " | ".join(f"{r['action_share'][a]:.1f}" for a in ACTIONS) + " | "
                         + " | ".join(f"{p:.3f}" for p in probs) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="", type=lambda s: [x for x in s.split(",") if x])
    ap.add_argument("--marks", default="100000,250000,500000,1000000", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--plans", type=int, default=30)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--analyze_only", action="store_true")
    args = ap.parse_args(argv)
    path = os.path.join(args.out, "untaught_funnel_cpu.json")
    if args.analyze_only:
        with open(path) as f:
            saved = json.load(f)
        results = saved["results"]
        args.marks, args.episodes, args.plans = saved["marks"], saved["episodes"], saved["plans"]
    else:
        results = run(args)
        os.makedirs(args.out, exist_ok=True)
        with open(path, "w") as f:
            json.dump(dict(marks=args.marks, episodes=args.episodes, plans=args.plans, results=results), f, indent=1)
    text = report(results, args)
    with open(os.path.join(args.out, "untaught_funnel_cpu.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
