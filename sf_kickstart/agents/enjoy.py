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
    safe loader (`sf_kickstart.checkpoints`: the allowlist, `--trust_checkpoint` for anything else), and before SF
    starts the experiment is checked: no config, no checkpoint of the asked kind, a file that does not load or a
    checkpoint that does not fit the env is one clear error (exit code 2);
  * it writes the video with OpenCV and then re-encodes it with an `ffmpeg` binary; without one there was no video at
    all. Without ffmpeg the OpenCV file (mp4v) is kept as the video;
  * it divides by the number of finished episodes at the end (ZeroDivisionError when --max_num_frames stops it first);
  * it plays until --max_num_frames (10^9) and writes the video only then: with --save_video --video_frames=N it plays
    N frames (unless --max_num_frames/--max_num_episodes are given), writes the video and prints its path. A shipped
    teacher's video goes to <train_dir>/zoo/NAME/, never into the package;
  * with --save_video, rendering through pygame initialises SDL, whose signal handlers swallow SIGINT and SIGTERM: with
    SDL_NO_SIGNAL_HANDLERS both stop enjoy (exit 130 / 143) and the frames recorded so far are written;
  * it builds the model on every observation key of the env: a student restricted with --student_obs_keys (its
    checkpoint has weights for its own keys only) did not load. It is built on the keys of the run's config.
MiniGrid renders rgb frames without a display, so `--save_video` works on a headless machine. MuJoCo (`mujoco_*`)
renders through an OpenGL backend, MUJOCO_GL=egl or osmesa (glfw needs a display): with --save_video it is checked
before anything is played (`suites.mujoco.prepare_rendering`: unset, the first that works is used), and a machine
where none works gets one error (exit code 2) naming MUJOCO_GL and what to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from contextlib import contextmanager
from typing import List, Optional, Tuple

from sample_factory.utils.utils import experiment_dir, log

from sf_kickstart.agents.agent import AgentError, experiment_cfg, load_agent
from sf_kickstart.device import check_device
from sf_kickstart.errors import UserError, exit_status, prefixed
from sf_kickstart.experiments import resolve_experiment_dir
from sf_kickstart.sources import writable_dir
from sf_kickstart.sf.setup import argv_value, parse_args, wants_help
from sf_kickstart.suites.registry import suite_for_env
from sf_kickstart.teachers.inputs import restricted_space, student_keys

PROG = "python -m sf_kickstart.enjoy"
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
    name = argv_value(argv, "experiment")
    if name is None:
        raise AgentError("--experiment is required: the experiment to watch (a name under --train_dir, a path, zoo:NAME or hf://user/repo)")
    train_dir = argv_value(argv, "train_dir") or "train_dir"
    exp_dir = resolve_experiment_dir(name, train_dir, prefixed("Experiment"))
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
    agent = load_agent(exp_dir, info.obs_space, info.action_space, merged.policy_index, merged.load_checkpoint_kind,
                       trust=cfg.trust_checkpoint)  # this command line's, not the trained run's
    if cfg.save_video:  # rgb frames: e.g. MuJoCo's OpenGL backend, checked (and chosen) before anything is played
        suite_for_env(merged.env).prepare_rendering(merged.env)
    log.info(f"Watching {exp_dir} on {merged.env}: {agent.checkpoint_path} ({agent.env_steps} frames)")


def stop_when_recorded(cfg) -> None:
    """SF's enjoy plays until --max_num_frames (10^9) or --max_num_episodes and writes the video only then;
    --video_frames limits the recorded frames, not the play. With --save_video and neither limit given, play as long
    as the video needs: --video_frames=N env frames (SF counts one per env step, whatever the number of agents, and
    records one frame per step), or for --video_frames=-1 (SF: the first episode) one episode."""
    if not cfg.save_video or {"max_num_frames", "max_num_episodes"} & set(cfg.cli_args):
        return
    if 0 < cfg.video_frames < cfg.max_num_frames:
        cfg.max_num_frames = cfg.cli_args["max_num_frames"] = int(cfg.video_frames)
    elif cfg.video_frames < 0:
        cfg.max_num_episodes = cfg.cli_args["max_num_episodes"] = 1


def save_video(dir_path: str, frames: list, fps: int, cfg) -> None:
    """SF's generate_replay_video, keeping OpenCV's own file when there is no ffmpeg to re-encode it."""
    from sample_factory.huggingface import huggingface_utils
    from sample_factory.utils.utils import project_tmp_dir

    if not frames:
        log.warning("No frames were rendered: no video written")
        return
    os.makedirs(dir_path, exist_ok=True)
    huggingface_utils.generate_replay_video(dir_path, frames, fps, cfg)
    name = cfg.video_name or "replay.mp4"
    name = name if name.endswith(".mp4") else name + ".mp4"
    target, tmp = os.path.join(dir_path, name), os.path.join(project_tmp_dir(), name)
    if shutil.which("ffmpeg") is None and os.path.isfile(tmp):
        shutil.move(tmp, target)
        log.info(f"No ffmpeg on this machine: kept OpenCV's mp4v encoding as {target}")
    if os.path.isfile(target):
        print(f"Video ({len(frames)} frames): {target}", flush=True)


class Recording:
    """What SF's enjoy records, seen through the two names of its module it calls with it (`render_frame` gets the
    env and the list of frames, `generate_replay_video` writes them): the video goes to `video_dir` (`sources.writable_dir`) when given, and
    an interrupted enjoy can still write what was recorded."""

    def __init__(self, video_dir: Optional[str] = None):
        self.video_dir = video_dir
        self.cfg = self.env = None
        self.frames: list = []

    def render_frame(self, sf_render_frame):
        def render_frame(cfg, env, video_frames, *args):
            self.cfg, self.env, self.frames = cfg, env, video_frames
            return sf_render_frame(cfg, env, video_frames, *args)

        return render_frame

    def write(self, dir_path: str, frames: list, fps: int, cfg) -> None:
        save_video(self.video_dir or dir_path, frames, fps, cfg)

    def write_partial(self) -> None:
        """After an interruption: close the env SF was playing and write the frames recorded so far."""
        if self.env is not None:
            self.env.close()
        if self.cfg is not None and self.cfg.save_video:
            self.write(experiment_dir(cfg=self.cfg), self.frames, self.cfg.fps if self.cfg.fps > 0 else 30, self.cfg)


def on_own_keys(sf_create_actor_critic):
    """SF's model factory as SF's enjoy calls it (cfg, the env's observation space, its action space), building the
    model on the observation keys of the run's --student_obs_keys, as training built it (`teachers.inputs`)."""

    def create_actor_critic(cfg, obs_space, action_space):
        return sf_create_actor_critic(cfg, restricted_space(obs_space, student_keys(cfg), cfg.env), action_space)

    return create_actor_critic


@contextmanager
def sf_enjoy_fixed(recording: Recording, trust=None):
    """SF's enjoy module with the project's checkpoint loader, model builder and the video writer above."""
    import sample_factory.enjoy as sf_enjoy

    from sf_kickstart.sf.fixes.learner import FixedLearner

    names = ("Learner", "generate_replay_video", "render_frame", "create_actor_critic")
    saved = {n: getattr(sf_enjoy, n) for n in names}
    fixed = (FixedLearner.trusting(trust), recording.write, recording.render_frame(saved["render_frame"]),
             on_own_keys(saved["create_actor_critic"]))
    for n, value in zip(names, fixed):
        setattr(sf_enjoy, n, value)
    try:
        yield sf_enjoy.enjoy
    finally:
        for n, value in saved.items():
            setattr(sf_enjoy, n, value)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM while enjoy runs: SF's loop ends where it is, and what was recorded is written."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM, as the shell reports a signal


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM raise Interrupted; a second one acts as usual (the default: the process ends). Rendering
    through pygame initialises SDL, whose own handlers only queue a quit event: SDL_NO_SIGNAL_HANDLERS, set before,
    leaves the signals to these handlers."""

    def interrupted(signum, _frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        raise Interrupted(signum)

    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    saved = {s: signal.signal(s, interrupted) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def setup(argv: List[str]) -> Tuple[object, Optional[str]]:
    """SF's enjoy config (checked by `preflight`, playing only as long as the video needs) and its video dir.
    --help lists every flag (the experiment's env's too when --experiment is given) and exits 0."""
    help_only = wants_help(argv) and argv_value(argv, "experiment") is None
    cfg, _suite = parse_args(argv if help_only else experiment_argv(argv), evaluation=True, prog=PROG, doc=__doc__)
    preflight(cfg)
    stop_when_recorded(cfg)
    return cfg, writable_dir(experiment_dir(cfg=cfg, mkdir=False), argv_value(argv, "train_dir") or "train_dir")


def play(argv: List[str], recording: Recording) -> int:
    try:
        cfg, recording.video_dir = setup(argv)
    except UserError as exc:
        return exit_status(exc)
    with sf_enjoy_fixed(recording, cfg.trust_checkpoint) as enjoy:
        try:
            status, _ = enjoy(cfg)
        except ZeroDivisionError:  # SF's final average when no episode finished (e.g. --max_num_frames)
            log.info("No episode finished within the frame limit")
            status = 0
        except UserError as exc:  # a checkpoint SF's enjoy loads (through the project's loader) that is unusable
            return exit_status(exc)
    return int(status)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    recording = Recording()
    with stop_on_signals():
        try:
            return play(argv, recording)
        except Interrupted as exc:
            log.warning(f"{exc}: enjoy stopped")
            recording.write_partial()
            return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
