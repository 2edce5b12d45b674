"""python -m sf_kickstart.evaluate EXPERIMENT [--episodes=100] [--policy=greedy|sampled] [...]

Plays the experiment's latest checkpoint *and each of its teachers* (from its own config: `--teacher` or
`--teachers`; or given here) for N episodes per task on the same seeds, and puts them side by side: per task the raw
return, the normalised score and the task's contribution to the suite score, each with a 95 % bootstrap confidence
interval, and whether the student beats / ties / trails the task's teacher (95 % CI of the difference of mean raw
returns above 0 / containing 0 / below 0). Works on any experiment dir (ours, plain Sample Factory's, a teacher's,
`zoo:NAME`, `hf://user/repo`), e.g. a plain SF CartPole run (one task, score = mean return).

Greedy plays Sample Factory's `argmax_actions`: a categorical head's most likely action, a Gaussian (Box) head's
mean, each part's of a Tuple; `--policy=sampled` samples. An env steps on what its action space takes (`env_action`):
an int for a Discrete, a float32 array for a Box (a Box(1,) too), a tuple of those for a Tuple. Each agent reads the
observation keys its model was built on (a student's --student_obs_keys); a teacher reads those it reads in
training, through its obs map (a privileged teacher of a `_pomdp` student reads its "obs" from the env's "state": the
student's --teacher_obs_map, or --teacher_obs_map here with --teacher), checked as training checks them.

Envs are vectorised in this process: every task's envs step together and the policy runs one batched forward per
step over all of them. Episode j of task t always starts from the seed `episode_seed(seed, t, j)`, whichever agent
plays it.

Files (`--out`, default `<EXPERIMENT>/evaluation/`):
  report_<policy>.json, report_<policy>.md   the side-by-side report (JSON: {"student": SCORES, "teachers": [SCORES],
                                              "comparison": {task: {"teacher", "verdict", "diff", "diff_ci"}}})
and, next to every agent evaluated, its cache `<agent dir>/evaluation/scores_<policy>_p<policy_index>.json` (SCORES):

  {"format": "sf_kickstart.scores/1", "experiment": abs dir, "name", "env", "policy_index", "checkpoint": file name,
   "sha256": the checkpoint file's sha256 (the report shows 12 hex digits), "env_steps",
   "policy": "greedy"|"sampled", "episodes", "seed",
   "score_kind": "capped_normalized" (a suite with normalised scores) | "mean_return" (anything else),
   "tasks": {task: {"returns": [per episode], "mean_return", "mean_return_ci": [lo, hi], "normalized",
                    "normalized_ci", "score", "score_ci"}},   # normalized* null without a normalisation
   "suite_score", "suite_score_ci"}

`score` is a task's value on the suite-score scale: min(100, normalised score) for a suite (so the suite score is the
mean of the tasks' scores), the mean raw return otherwise. A cache is reused when checkpoint (name and sha256),
episodes, seed, policy and tasks match (`--force` re-plays). Checkpoints load safely (`sf_kickstart.checkpoints`;
`--trust_checkpoint`). `read_task_scores(exp_dir)` is how other code reads a teacher's cached per-task
scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from gymnasium.spaces import Box, Discrete
from gymnasium.spaces import Tuple as TupleSpace

from sample_factory.algo.utils.action_distributions import TupleActionDistribution, argmax_actions, calc_num_actions
from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs
from sample_factory.envs.create_env import create_env
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart import stats
from sf_kickstart.agents.agent import experiment_cfg, load_agent
from sf_kickstart.checkpoints import add_trust_arg
from sf_kickstart.provenance import short_hash
from sf_kickstart.device import check_device
from sf_kickstart.errors import UserError, exit_status, prefixed
from sf_kickstart.experiments import resolve_experiment_dir
from sf_kickstart.suites.registry import suite_for_env
from sf_kickstart.teachers import TeacherRouting, TeacherSpec, teacher_specs_from_cfg

from sf_kickstart.evaluation_cache import FORMAT, cache_path, read_scores, read_task_scores, report_dir, write_json
from sf_kickstart.sources import label

BOOTSTRAP = 2000


class EvaluationError(UserError):
    pass


# ------------------------------------------------------------------------------------------------------------ playing


def episode_seed(seed: int, task: str, episode: int) -> int:
    return (seed * 1_000_003 + zlib.crc32(task.encode()) + episode) % (2**31)


@dataclass
class _Slot:
    task: str
    env: object
    episodes: List[int]  # episode indices this env still has to play, in order
    current: int = -1
    ret: float = 0.0


def _as_dict(obs) -> dict:
    return obs if isinstance(obs, dict) else {"obs": obs}


def _make_slots(env_cfg, task_envs: Dict[str, str], episodes: int, envs_per_task: int) -> List[_Slot]:
    slots = []
    n = max(1, min(envs_per_task, episodes))
    for task, env_name in task_envs.items():
        for k in range(n):
            env = create_env(env_name, cfg=env_cfg, env_config=AttrDict(worker_index=0, vector_index=k, env_id=k))
            if getattr(env, "num_agents", 1) != 1:
                raise EvaluationError(f"{env_name}: multi-agent envs are not supported by the evaluation")
            slots.append(_Slot(task, env, list(range(k, episodes, n))))
    return slots


def env_action(space, row):
    """What `env.step` takes for one env's flat action row (SF's layout, as `preprocess_actions` splits it by
    `calc_num_actions`: one column per Discrete part, `shape` columns per Box part, in order): an int for a Discrete,
    a float32 array of the Box's shape (a Box(1,) stays an array), a tuple of those, part by part, for a Tuple."""
    row = np.asarray(row)
    if isinstance(space, Discrete):
        return int(row.item())
    if isinstance(space, Box):
        return row.astype(np.float32, copy=False).reshape(space.shape)
    if isinstance(space, TupleSpace):
        ends = np.cumsum([calc_num_actions(s) for s in space.spaces])[:-1]
        return tuple(env_action(s, part) for s, part in zip(space.spaces, np.split(row.reshape(-1), ends)))
    raise EvaluationError(f"Action space {space} is not supported by the evaluation")


def greedy_actions(distribution) -> torch.Tensor:
    """SF's `argmax_actions`, a Tuple's as one flat row per env (its parts side by side, as sampled actions are):
    SF's own Tuple argmax concatenates along the batch, which fails on a mixed Tuple and mixes envs otherwise."""
    if not isinstance(distribution, TupleActionDistribution):
        return argmax_actions(distribution)
    parts = [greedy_actions(d) for d in distribution.distributions]
    return torch.cat([p.reshape(p.shape[0], -1).float() for p in parts], dim=1)


def play(agent, env_cfg, task_envs: Dict[str, str], episodes: int, seed: int = 0, greedy: bool = True,
         envs_per_task: int = 16, progress: Optional[str] = None) -> Dict[str, List[float]]:
    """Raw return of `episodes` episodes per task; all envs step together, one batched forward per step. The model
    reads its own keys of each observation (`agent.view`); greedy is SF's `argmax_actions`: the most likely action
    of a categorical head, the mean of a Gaussian (Box) head, per part of a Tuple (`greedy_actions`); each env steps
    on `env_action` of its row."""
    slots = _make_slots(env_cfg, task_envs, episodes, envs_per_task)
    returns = {t: [0.0] * episodes for t in task_envs}
    record_stats = bool(getattr(env_cfg, "use_record_episode_statistics", False))
    model = agent.model
    device = agent.device
    env_keys = list(dict.fromkeys(agent.input_keys))
    rnn = torch.zeros(len(slots), agent.rnn_size, device=device)
    obs: List[Optional[dict]] = [None] * len(slots)
    bar = _progress_bar(len(task_envs) * episodes, progress)

    def next_episode(i: int) -> bool:
        s = slots[i]
        if not s.episodes:
            s.env.close()
            return False
        s.current, s.ret = s.episodes.pop(0), 0.0
        obs[i] = _as_dict(s.env.reset(seed=episode_seed(seed, s.task, s.current))[0])
        rnn[i] = 0.0
        return True

    torch.manual_seed(seed)
    active = [i for i in range(len(slots)) if next_episode(i)]
    with torch.no_grad():
        while active:
            batch = agent.view({k: torch.from_numpy(np.stack([np.asarray(obs[i][k]) for i in active])).to(device)
                                for k in env_keys})
            out = model(prepare_and_normalize_obs(model, batch), rnn[active])
            actions = greedy_actions(model.action_distribution()) if greedy else out["actions"]
            rnn[active] = out["new_rnn_states"]
            still = []
            for row, i in enumerate(active):
                s = slots[i]
                action = env_action(model.action_space, actions[row].cpu().numpy())
                o, r, terminated, truncated, info = s.env.step(action)
                s.ret += float(r)
                obs[i] = _as_dict(o)
                if not (terminated or truncated):
                    still.append(i)
                    continue
                if record_stats and "episode" not in (info or {}):  # a life lost, not the game: play on
                    obs[i], rnn[i] = _as_dict(s.env.reset()[0]), 0.0
                    still.append(i)
                    continue
                returns[s.task][s.current] = float(info["episode"]["r"]) if record_stats else s.ret
                bar.update(1)
                if next_episode(i):
                    still.append(i)
            active = still
    bar.close()
    return returns


def _progress_bar(total: int, desc: Optional[str]):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ep", disable=desc is None or None, file=sys.stderr, leave=False)


# ------------------------------------------------------------------------------------------------------------ scores


def _ci(samples: np.ndarray) -> List[float]:
    return [float(x) for x in stats.interval(samples)]


def bootstrap_means(returns: Dict[str, Sequence[float]], seed: int = 0) -> Dict[str, np.ndarray]:
    """Per task, BOOTSTRAP resampled means of its episodes' returns (one random stream over the tasks, in order)."""
    rng = np.random.default_rng(seed)
    return {task: stats.resampled_means(np.asarray(r, dtype=np.float64), BOOTSTRAP, rng) for task, r in returns.items()}


def summarize(env: str, returns: Dict[str, Sequence[float]], seed: int = 0) -> dict:
    """Per task mean raw return, normalised score and suite-scale score with 95 % CIs; the suite score with its CI
    (bootstrap over each task's episodes). Normalisation is the suite's `scoring.ScoreTable` (the one the training
    summaries use); a family without one scores the mean raw return."""
    table = suite_for_env(env).score_table()
    boot = bootstrap_means(returns, seed)
    means = {t: float(np.mean(r)) for t, r in returns.items()}

    def normalized(task, value):
        return None if table is None else table.normalized(task, value)

    def task_score(task, value):  # what the suite score averages: table.capped_mean of this one task
        return value if table is None else table.capped_mean({task: value})

    tasks = {}
    for t, r in returns.items():
        lo, hi = _ci(boot[t])  # the normalised score is increasing in the mean return: map the interval's ends
        tasks[t] = dict(
            returns=[float(x) for x in r], mean_return=means[t], mean_return_ci=[lo, hi],
            normalized=normalized(t, means[t]), normalized_ci=None if table is None else [normalized(t, lo), normalized(t, hi)],
            score=task_score(t, means[t]), score_ci=[task_score(t, lo), task_score(t, hi)],
        )
    per_sample = [float(np.mean([task_score(t, boot[t][b]) for t in returns])) for b in range(BOOTSTRAP)]
    suite_score = float(np.mean(list(means.values()))) if table is None else table.capped_mean(means)
    return dict(
        score_kind="mean_return" if table is None else "capped_normalized",
        tasks=tasks, suite_score=suite_score, suite_score_ci=_ci(np.asarray(per_sample)),
    )


def verdict(student: Sequence[float], teacher: Sequence[float], seed: int = 0) -> dict:
    """beats / ties / trails from the 95 % bootstrap CI of the difference of mean raw returns."""
    s = bootstrap_means({"s": student}, seed)["s"]
    t = bootstrap_means({"t": teacher}, seed + 1)["t"]
    lo, hi = _ci(s - t)
    word = "beats" if lo > 0 else "trails" if hi < 0 else "ties"
    return dict(verdict=word, diff=float(np.mean(student) - np.mean(teacher)), diff_ci=[lo, hi])


# ------------------------------------------------------------------------------------------------------------ agents


@dataclass
class Setup:
    """What every agent of one evaluation shares: the student's env config, its tasks, episodes, seeds, policy."""

    env_cfg: AttrDict
    task_envs: Dict[str, str]
    episodes: int
    seed: int
    policy: str
    envs_per_task: int
    device: str = "cpu"
    force: bool = False
    show_progress: bool = True
    trust: Optional[str] = None  # --trust_checkpoint (sf_kickstart.checkpoints)
    train_dir: Optional[str] = None  # where a shipped teacher's cache is written (sources.writable_dir)

    def spaces(self):
        from sf_kickstart.envprobe import make_env_info

        try:
            info = make_env_info(self.env_cfg)
        except Exception as exc:  # noqa: BLE001
            raise EvaluationError(f"Could not create env {self.env_cfg.env!r}: {type(exc).__name__}: {exc}") from exc
        return info.obs_space, info.action_space


def _cache_matches(data: Optional[dict], agent, setup: Setup) -> bool:
    return (
        data is not None
        and data.get("checkpoint") == os.path.basename(agent.checkpoint_path)
        and data.get("sha256", agent.sha256) == agent.sha256  # same name, other bytes: played again
        and data.get("episodes") == setup.episodes
        and data.get("seed") == setup.seed
        and data.get("env") == setup.env_cfg.env
        and list(data.get("tasks", {})) == list(setup.task_envs)
    )


def evaluate_agent(exp_dir: str, setup: Setup, spaces, policy_index: int = 0, checkpoint: Optional[str] = None,
                   name: Optional[str] = None, write_cache: bool = True, teacher: Optional[TeacherSpec] = None) -> dict:
    """One agent's SCORES (module docstring), from its cache when it matches, else played and cached. `teacher`: the
    agent is the evaluated experiment's teacher, reading the observation keys it reads in training (its obs map)."""
    agent = load_agent(exp_dir, *spaces, policy=policy_index, checkpoint=checkpoint, device=setup.device,
                       trust=setup.trust, teacher_of=None if teacher is None else setup.env_cfg,
                       obs_map=None if teacher is None else teacher.obs_map)
    name = name or os.path.basename(os.path.normpath(exp_dir))
    cached = read_scores(exp_dir, setup.policy, policy_index, setup.train_dir)
    if not setup.force and checkpoint is None and _cache_matches(cached, agent, setup):
        print(f"sf_kickstart: {name}: cached scores", file=sys.stderr)
        return dict(cached, name=name)
    returns = play(
        agent, setup.env_cfg, setup.task_envs, setup.episodes, setup.seed, setup.policy == "greedy",
        setup.envs_per_task, progress=name if setup.show_progress else None,
    )
    scores = dict(
        format=FORMAT, experiment=label(exp_dir), name=name, env=setup.env_cfg.env,
        policy_index=policy_index, checkpoint=os.path.basename(agent.checkpoint_path), sha256=agent.sha256,
        env_steps=agent.env_steps,
        policy=setup.policy, episodes=setup.episodes, seed=setup.seed,
        **summarize(setup.env_cfg.env, returns, setup.seed),
    )
    if write_cache:
        write_json(cache_path(exp_dir, setup.policy, policy_index, setup.train_dir), scores)
    return scores


def make_setup(exp_dir: str, opts) -> Setup:
    env_cfg = experiment_cfg(exp_dir)
    env_cfg.device = opts.device
    task_envs = suite_for_env(env_cfg.env).task_envs(env_cfg.env)
    return Setup(env_cfg, task_envs, opts.episodes, opts.seed, opts.policy, opts.envs_per_task, opts.device,
                 opts.force, not opts.no_progress, opts.trust_checkpoint, opts.train_dir or "train_dir")


def teacher_specs(exp_cfg: AttrDict, opts, train_dir: str) -> list:
    """The teachers to put next to the student: --teacher/--teachers given here, else the experiment's own."""
    src = AttrDict(teacher=exp_cfg.get("teacher"), teachers=exp_cfg.get("teachers"), train_dir=train_dir,
                   teacher_obs_map=exp_cfg.get("teacher_obs_map"), trust_checkpoint=opts.trust_checkpoint)
    if opts.teacher or opts.teachers:
        src.teacher, src.teachers, src.teacher_obs_map = opts.teacher, opts.teachers, opts.teacher_obs_map
    if opts.no_teachers:
        return []
    task_names = suite_for_env(exp_cfg.env).task_names(exp_cfg.env)
    return teacher_specs_from_cfg(src, task_names)


def compare(student: dict, teachers: List[dict], owners: Dict[str, int], seed: int) -> Dict[str, dict]:
    out = {}
    for task, owner in owners.items():
        if owner < 0 or task not in teachers[owner]["tasks"]:
            continue
        t = teachers[owner]
        out[task] = dict(teacher=t["name"], **verdict(student["tasks"][task]["returns"], t["tasks"][task]["returns"], seed))
    return out


def evaluate_experiment(exp_dir: str, opts) -> dict:
    setup = make_setup(exp_dir, opts)
    spaces = setup.spaces()
    student = evaluate_agent(exp_dir, setup, spaces, opts.policy_index)
    train_dir = opts.train_dir or setup.env_cfg.get("train_dir") or "train_dir"
    specs = teacher_specs(setup.env_cfg, opts, train_dir)
    teachers = [evaluate_agent(s.path, setup, spaces, s.policy, name=s.name, teacher=s) for s in specs]
    names = suite_for_env(setup.env_cfg.env).task_names(setup.env_cfg.env)
    owner_of = dict(zip(names, TeacherRouting.of(specs, names).teacher_of_task)) if specs else {}
    owners = {t: owner_of.get(t, -1) for t in setup.task_envs}
    return dict(student=student, teachers=teachers, comparison=compare(student, teachers, owners, opts.seed))


# ------------------------------------------------------------------------------------------------------------ report


def _fmt(value: Optional[float], ci: Optional[Sequence[float]] = None, digits: int = 3) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return text + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci is not None else "")


def render_markdown(report: dict) -> str:
    s, teachers, cmp = report["student"], report["teachers"], report["comparison"]
    suite = s["score_kind"] == "capped_normalized"
    scale = "capped normalised score (0 = random, 100 = reference)" if suite else "mean return"
    lines = [
        f"# Evaluation of `{s['name']}` on `{s['env']}`",
        "",
        f"{s['episodes']} {s['policy']} episodes per task, seed {s['seed']}, the same episode seeds for every agent. "
        f"Brackets: 95 % bootstrap confidence intervals. Score: {scale}.",
        "",
        f"| agent | checkpoint | sha256 | frames | {'suite score' if suite else 'score (mean return)'} |",
        "|---|---|---|---|---|",
    ]
    for a in [s] + teachers:
        lines.append(f"| {a['name']} | `{a['checkpoint']}` | `{short_hash(a.get('sha256'))}` | {a['env_steps']} | "
                     f"{_fmt(a['suite_score'], a['suite_score_ci'], 1)} |")
    by_name = {t["name"]: t for t in teachers}
    if not teachers:
        lines += ["", "| task | return | normalised score | score |", "|---|---|---|---|"]
        lines += [f"| {task} | {_fmt(v['mean_return'], v['mean_return_ci'])} | {_fmt(v['normalized'], v['normalized_ci'], 1)} "
                  f"| {_fmt(v['score'], v['score_ci'], 1)} |" for task, v in s["tasks"].items()]
        return "\n".join(lines) + "\n"
    lines += ["", "| task | student return | teacher return | student score | teacher score | student vs teacher |",
              "|---|---|---|---|---|---|"]
    for task, v in s["tasks"].items():
        c = cmp.get(task)
        t = by_name[c["teacher"]]["tasks"][task] if c else None
        vs = f"{c['verdict']} {c['teacher']} ({c['diff']:+.3f})" if c else "–"
        lines.append(
            f"| {task} | {_fmt(v['mean_return'], v['mean_return_ci'])} | {_fmt(t and t['mean_return'], t and t['mean_return_ci'])} "
            f"| {_fmt(v['score'], v['score_ci'], 1)} | {_fmt(t and t['score'], t and t['score_ci'], 1)} | {vs} |"
        )
    if cmp:
        words = [c["verdict"] for c in cmp.values()]
        lines += ["", f"Student beats its teacher on {words.count('beats')} task(s), ties on {words.count('ties')}, "
                  f"trails on {words.count('trails')}."]
        for word in ("beats", "ties", "trails"):
            tasks = [t for t, c in cmp.items() if c["verdict"] == word]
            if tasks:
                lines.append(f"- {word}: {', '.join(tasks)}")
    return "\n".join(lines) + "\n"


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train_dir", default=None, help="where experiment and teacher names are looked up")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task (default 100)")
    parser.add_argument("--policy", choices=("greedy", "sampled"), default="greedy", help="argmax or sampled actions")
    parser.add_argument("--seed", type=int, default=0, help="base of the episode seeds (same for every agent)")
    parser.add_argument("--envs_per_task", type=int, default=16, help="envs stepped together per task")
    parser.add_argument("--policy_index", type=int, default=0, help="which policy of the experiment (PBT member)")
    parser.add_argument("--teacher", default=None, help="evaluate against this teacher instead of the experiment's own")
    parser.add_argument("--teachers", default=None, help="evaluate against this teacher map instead")
    parser.add_argument("--teacher_obs_map", default=None, help="with --teacher: TEACHER_KEY:ENV_KEY[,...], the "
                        "observation keys it reads from other env keys (e.g. obs:state on a _pomdp env), as in training")
    parser.add_argument("--no_teachers", action="store_true", help="evaluate the experiment alone")
    parser.add_argument("--device", default="cpu", help="cpu or gpu")
    parser.add_argument("--out", default=None, help="report directory (default <EXPERIMENT>/evaluation)")
    parser.add_argument("--force", action="store_true", help="re-play agents whose cached scores match")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    add_trust_arg(parser)


def parse_opts(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line's options (also how other code, e.g. `zoo.ship`, asks for an evaluation)."""
    parser = argparse.ArgumentParser(prog="python -m sf_kickstart.evaluate", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="experiment dir, a name under --train_dir, zoo:NAME or hf://user/repo")
    add_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    opts = parse_opts(argv)
    try:
        if opts.episodes < 1:
            raise EvaluationError(f"--episodes must be >= 1, got {opts.episodes}")
        check_device(opts.device)
        exp_dir = resolve_experiment_dir(opts.experiment, opts.train_dir or "train_dir", prefixed("Experiment"))
        report = evaluate_experiment(exp_dir, opts)
    except UserError as exc:
        return exit_status(exc)
    out = opts.out or report_dir(exp_dir, opts.train_dir or "train_dir")
    md = render_markdown(report)
    write_json(os.path.join(out, f"report_{opts.policy}.json"), report)
    with open(os.path.join(out, f"report_{opts.policy}.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"sf_kickstart: wrote {os.path.join(out, f'report_{opts.policy}.md')} and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
