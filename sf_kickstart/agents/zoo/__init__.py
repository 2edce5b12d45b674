"""python -m sf_kickstart.zoo [--train_dir=DIR] [--env=ENV]: the teachers this machine has (each with the first 12 hex
digits of its checkpoint's sha256, as runs record it), and which can teach ENV."""

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


def reads_observations(name: str, cfg, own_space, env_space, env: str) -> bool:
    """The teacher finds every observation key it reads in `env`'s, by name, with its space (`teachers.inputs`)."""
    from sf_kickstart.teachers import TeacherError, teacher_keys

    try:
        teacher_keys(name, own_space, cfg, {}, env_space, env)
        return True
    except TeacherError:
        return False


def describe(name: str, source: str, exp_dir: str, env: Optional[str], memo: Dict, train_dir: str) -> dict:
    """One row of the listing: env, architecture, frames, evaluated score, and whether it can teach `env`."""
    from sf_kickstart.agents.agent import AgentError, experiment_cfg
    from sf_kickstart.evaluation_cache import read_scores
    from sf_kickstart.teachers.frozen import spaces_match

    checkpoint = latest_checkpoint(exp_dir)
    row = dict(name=name, source=source, path=exp_dir, env="?", arch="?", frames=trained_frames(exp_dir), score=None,
               sha256=file_sha256(checkpoint) if checkpoint else None)
    try:
        cfg = experiment_cfg(exp_dir)
    except AgentError as exc:
        return dict(row, note=str(exc))
    scores = read_scores(exp_dir, train_dir=train_dir)
    row.update(env=cfg.env, arch=architecture(cfg), score=scores and scores["suite_score"])
    if env is not None:
        try:
            for e in (env, cfg.env):
                memo.setdefault(e, _spaces(cfg, e))
            mine, theirs = memo[cfg.env], memo[env]
            row["teaches"] = reads_observations(name, cfg, mine[0], theirs[0], env) and spaces_match(mine[1], theirs[1])
        except Exception as exc:  # noqa: BLE001 - an env this machine cannot create cannot be taught here
            row["teaches"], row["note"] = False, f"{type(exc).__name__}: {exc}"
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
    head = ["teacher (--teacher=...)", "source", "env", "architecture", "frames", "evaluated suite score",
            "checkpoint sha256"]
    head += [f"can teach {env}"] if env else []
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        cells = [r["name"], r["source"], r["env"], r["arch"], str(r["frames"] or "?"),
                 f"{r['score']:.1f}" if r["score"] is not None else "not evaluated", short_hash(r["sha256"])]
        if env:
            cells.append("yes" if r.get("teaches") else "no")
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
