"""python -m sf_kickstart.zoo [--train_dir=DIR] [--env=ENV]: the teachers this machine has (each with the first 12 hex
digits of its checkpoint's sha256, as runs record it), and which can teach ENV.

Per teacher: its env, architecture, action space (e.g. `Discrete(7)`, `Box(6)`: a Gaussian policy), frames, its
evaluated score from its evaluation cache and that score's kind (`suite score`: the capped mean normalised score of
a suite; `mean return`: any other env; with the env it was evaluated on when that is not its own), and with --env
whether it can teach that env: `yes` (every observation key it reads found by name, same action space),
`yes, with --teacher_obs_map=...` (a key it reads is under another name there, e.g. a `mujoco_<task>` teacher on
`mujoco_<task>_pomdp` reads its `obs` from `state`), or `no`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional

from sf_kickstart.errors import UserError, exit_status
from sf_kickstart import hub
from sf_kickstart.checkpoints import file_sha256
from sf_kickstart.experiments import experiment_dirs, latest_checkpoint, trained_frames
from sf_kickstart.provenance import short_hash
from sf_kickstart.sources import ZOO_PREFIX, shipped



def architecture(cfg) -> str:
    """Short description of an SF model config, e.g. 'MLP 64 + GRU 64' (pixel envs: the conv encoder)."""
    mlp = "-".join(str(x) for x in cfg.get("encoder_mlp_layers") or [])
    pixels = str(cfg.get("env", "")).startswith(("atari_", "dmlab_", "doom_"))
    parts = [f"conv {cfg.get('encoder_conv_architecture')} + MLP {mlp}" if pixels else f"MLP {mlp}"]
    if cfg.get("use_rnn", True):
        parts.append(f"{str(cfg.get('rnn_type', 'gru')).upper()} {cfg.get('rnn_size')}")
    return " + ".join(parts)


def _spaces(cfg, env: str):
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.suites.registry import prepare_env
    from sf_kickstart.envprobe import make_env_info

    prepare_env(env)
    info = make_env_info(AttrDict({**cfg, "env": env}))
    return info.obs_space, info.action_space


def obs_map_needed(name: str, cfg, own_space, env_space, env: str) -> Optional[Dict[str, str]]:
    """The obs map with which the teacher finds every observation key it reads in `env`'s with its space
    (`teachers.inputs`): {} by name, the map `inputs.suggested_obs_map` gives, or None when neither works."""
    from sf_kickstart.teachers import TeacherError, teacher_keys
    from sf_kickstart.teachers.inputs import suggested_obs_map

    for obs_map in dict.fromkeys([(), tuple(suggested_obs_map(own_space, cfg, env_space).items())]):
        try:
            teacher_keys(name, own_space, cfg, dict(obs_map), env_space, env)
            return dict(obs_map)
        except TeacherError:
            continue
    return None


SCORE_KINDS = {"capped_normalized": "suite score", "mean_return": "mean return"}


def score_kind(scores: Optional[dict], own_env: str) -> str:
    """What an evaluation cache's score is (`SCORE_KINDS`), and the env it was played on when not the teacher's own."""
    if not scores:
        return "-"
    kind = SCORE_KINDS.get(scores.get("score_kind"), str(scores.get("score_kind", "?")))
    return kind if scores.get("env", own_env) == own_env else f"{kind} (on {scores['env']})"


def teaches(name: str, cfg, env: str, memo: Dict) -> str:
    """`yes`, `yes, with --teacher_obs_map=...` or `no`: whether the teacher can kickstart a student on `env`."""
    from sf_kickstart.teachers.frozen import spaces_match

    mine, theirs = memo[cfg.env], memo[env]
    obs_map = obs_map_needed(name, cfg, mine[0], theirs[0], env)
    if obs_map is None or not spaces_match(mine[1], theirs[1]):
        return "no"
    return "yes" + (f", with --teacher_obs_map={','.join(f'{k}:{v}' for k, v in obs_map.items())}" if obs_map else "")


def describe(name: str, source: str, exp_dir: str, env: Optional[str], memo: Dict, train_dir: str) -> dict:
    """One row of the listing: env, architecture, action space, frames, evaluated score and its kind, and whether it
    can teach `env`."""
    from sf_kickstart.agents.agent import AgentError, experiment_cfg
    from sf_kickstart.evaluation_cache import read_scores
    from sf_kickstart.sf.distillation import describe_actions

    checkpoint = latest_checkpoint(exp_dir)
    row = dict(name=name, source=source, path=exp_dir, env="?", arch="?", actions="?", frames=trained_frames(exp_dir),
               score=None, kind="-", sha256=file_sha256(checkpoint) if checkpoint else None)
    try:
        cfg = experiment_cfg(exp_dir)
    except AgentError as exc:
        return dict(row, note=str(exc))
    scores = read_scores(exp_dir, train_dir=train_dir)
    row.update(env=cfg.env, arch=architecture(cfg), score=scores and scores["suite_score"], kind=score_kind(scores, cfg.env))
    try:
        for e in dict.fromkeys([cfg.env] + ([env] if env is not None else [])):
            memo.setdefault(e, _spaces(cfg, e))
        row["actions"] = describe_actions(memo[cfg.env][1])
        if env is not None:
            row["teaches"] = teaches(name, cfg, env, memo)
    except Exception as exc:  # noqa: BLE001 - an env this machine cannot create cannot be taught here
        row["teaches"], row["note"] = "no", f"{type(exc).__name__}: {exc}"
    return row


def find_teachers(train_dir: str, env: Optional[str] = None) -> List[dict]:
    memo: Dict = {}
    rows = [describe(ZOO_PREFIX + n, "shipped", d, env, memo, train_dir) for n, d in shipped().items()]
    hub_root = os.path.join(train_dir, "hub")
    for d in experiment_dirs(train_dir) if os.path.isdir(train_dir) else []:
        rel = os.path.relpath(d, train_dir)
        from_hub = os.path.commonpath([os.path.abspath(d), os.path.abspath(hub_root)]) == os.path.abspath(hub_root)
        name = (hub.download_record(d) or {}).get("uri") or "hf://" + os.path.relpath(d, hub_root) if from_hub else rel
        rows.append(describe(name, "hub" if from_hub else "train_dir", d, env, memo, train_dir))
    return rows


def render(rows: List[dict], env: Optional[str]) -> str:
    head = ["teacher (--teacher=...)", "source", "env", "architecture", "frames", "evaluated score", "score kind",
            "action space", "checkpoint sha256"]
    head += [f"can teach {env}"] if env else []
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [r["name"], r["source"], r["env"], r["arch"], str(r["frames"] or "?"),
                 f"{r['score']:.1f}" if r["score"] is not None else "not evaluated", r["kind"], r["actions"],
                 short_hash(r["sha256"])]
        if env:
            cells.append(r.get("teaches", "no"))
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sf_kickstart.zoo", description=__doc__)
    parser.add_argument("--train_dir", default="train_dir", help="also list the experiments under this directory")
    parser.add_argument("--env", default=None, help="say which teachers can kickstart a student on this env")
    opts = parser.parse_args(argv)
    if opts.env is not None:
        from sf_kickstart.suites.registry import prepare_env

        try:
            prepare_env(opts.env)
        except UserError as exc:
            return exit_status(exc)
    rows = find_teachers(opts.train_dir, opts.env)
    print(render(rows, opts.env))
    for r in rows:
        if r.get("note"):
            print(f"  {r['name']}: {r['note']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
