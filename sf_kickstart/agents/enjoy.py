"""python -m sf_kickstart.enjoy --experiment=NAME [--train_dir=DIR] [--env=ENV] [Sample Factory's enjoy flags]

Sample Factory's own `enjoy` (watch an agent, record a video, push it to the Hugging Face Hub) for every env this
project trains and any experiment dir: ours, plain Sample Factory's, a teacher's, `--experiment=zoo:NAME` or
`--experiment=hf://user/repo`. SF's flags work: `--no_render`, `--save_video --video_frames=N [--video_name=F]`,
`--max_num_episodes`, `--max_num_frames`, `--load_checkpoint_kind=latest|best`, `--eval_deterministic`,
`--push_to_hub --hf_repository=user/name`. `--env` defaults to the experiment's own; a single task of a suite plays
with its own env name (e.g. `--env=minigrid_DoorKey-8x8` for a `minigrid_suite` agent: same spaces). The suite env
itself plays its task 0.

What is fixed around SF 2.1.1's enjoy (in this process, by replacing names SF's enjoy module looks up):
  * its `torch.load` runs with torch's `weights_only=True` default (torch >= 2.6), which refuses SF checkpoints (they
    hold numpy scalars); SF logs the refusal and then crashes on `None["model"]`. Checkpoints load with the project's
    loader, and before SF starts the experiment is checked: no config, no checkpoint of the asked kind, a file that
    does not load or a checkpoint that does not fit the env is one clear error (exit code 2);
  * it writes the video with OpenCV and then re-encodes it with an `ffmpeg` binary; without one there was no video at
    all. Without ffmpeg the OpenCV file (mp4v) is kept as the video;
  * it divides by the number of finished episodes at the end (ZeroDivisionError when --max_num_frames stops it first).
MiniGrid renders rgb frames without a display, so `--save_video` works on a headless machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from typing import List, Optional

from sample_factory.utils.utils import experiment_dir, log

from sf_kickstart.agents.agent import AgentError, experiment_cfg, load_agent
from sf_kickstart.device import DeviceError, check_device
from sf_kickstart.sf.setup import argv_value

ENJOY_DEFAULTS = ["--enjoy_script=sf_kickstart.enjoy", "--train_script=sf_kickstart.train"]


def _replace(argv: List[str], flag: str, value: str) -> List[str]:
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a.startswith(f"--{flag}="):
            continue
        if a == f"--{flag}":
            skip = True
            continue
        out.append(a)
    return out + [f"--{flag}={value}"]


def experiment_argv(argv: List[str]) -> List[str]:
    """Resolve --experiment (a name under --train_dir, a path, zoo:NAME or hf://user/repo) into SF's
    --train_dir/--experiment pair, and default --env to the experiment's own."""
    from sf_kickstart.experiments import ExperimentError, resolve_experiment_dir

    name = argv_value(argv, "experiment")
    if name is None:
        raise AgentError("--experiment is required: the experiment to watch (a name under --train_dir, a path, zoo:NAME or hf://user/repo)")
    train_dir = argv_value(argv, "train_dir") or "train_dir"
    try:
        exp_dir = resolve_experiment_dir(name, train_dir)
    except ExperimentError as exc:
        raise AgentError(f"Experiment {exc}") from exc
    argv = _replace(_replace(argv, "train_dir", os.path.dirname(exp_dir)), "experiment", os.path.basename(exp_dir))
    if argv_value(argv, "env") is None:
        argv = [f"--env={experiment_cfg(exp_dir).env}"] + argv
    return argv + [d for d in ENJOY_DEFAULTS if argv_value(argv, d[2:].split("=")[0]) is None]


def preflight(cfg):
    """Everything SF's enjoy would trip over, checked first: the merged config, the device, the checkpoint."""
    from sample_factory.cfg.arguments import load_from_checkpoint

    from sf_kickstart.envprobe import make_env_info

    exp_dir = experiment_dir(cfg=cfg, mkdir=False)
    experiment_cfg(exp_dir)
    merged = load_from_checkpoint(cfg)
    check_device(merged.device)
    info = make_env_info(merged)
    agent = load_agent(exp_dir, info.obs_space, info.action_space, merged.policy_index, merged.load_checkpoint_kind)
    log.info(f"Watching {exp_dir} on {merged.env}: {agent.checkpoint_path} ({agent.env_steps} frames)")


def save_video(dir_path: str, frames: list, fps: int, cfg) -> None:
    """SF's generate_replay_video, keeping OpenCV's own file when there is no ffmpeg to re-encode it."""
    from sample_factory.huggingface import huggingface_utils
    from sample_factory.utils.utils import project_tmp_dir

    if not frames:
        log.warning("No frames were rendered: no video written")
        return
    huggingface_utils.generate_replay_video(dir_path, frames, fps, cfg)
    name = cfg.video_name or "replay.mp4"
    name = name if name.endswith(".mp4") else name + ".mp4"
    target, tmp = os.path.join(dir_path, name), os.path.join(project_tmp_dir(), name)
    if shutil.which("ffmpeg") is None and os.path.isfile(tmp):
        shutil.move(tmp, target)
        log.info(f"No ffmpeg on this machine: kept OpenCV's mp4v encoding as {target}")


@contextmanager
def sf_enjoy_fixed():
    """SF's enjoy module with the project's checkpoint loader and the video writer above."""
    import sample_factory.enjoy as sf_enjoy

    from sf_kickstart.sf.learner import FixedLearner

    saved = sf_enjoy.Learner, sf_enjoy.generate_replay_video
    sf_enjoy.Learner, sf_enjoy.generate_replay_video = FixedLearner, save_video
    try:
        yield sf_enjoy.enjoy
    finally:
        sf_enjoy.Learner, sf_enjoy.generate_replay_video = saved


def main(argv: Optional[List[str]] = None) -> int:
    from sf_kickstart.experiments import CheckpointLoadError
    from sf_kickstart.sf.setup import USER_ERRORS, PresetError, parse_args

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg, _suite = parse_args(experiment_argv(argv), evaluation=True)
        preflight(cfg)
    except (AgentError, DeviceError, PresetError, *USER_ERRORS) as exc:
        print(f"sf_kickstart: error: {exc}", file=sys.stderr)
        return 2
    with sf_enjoy_fixed() as enjoy:
        try:
            status, _ = enjoy(cfg)
        except ZeroDivisionError:  # SF's final average when no episode finished (e.g. --max_num_frames)
            log.info("No episode finished within the frame limit")
            status = 0
        except CheckpointLoadError as exc:
            print(f"sf_kickstart: error: {exc}", file=sys.stderr)
            return 2
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
