"""Helpers for the end-to-end tests: short real training runs on CPU through subprocesses."""

from __future__ import annotations

import os
import subprocess
from typing import Dict, List

import torch

from sf_kickstart import checkpoints, events, experiments, processes
from sf_kickstart.paths import REPO_ROOT as REPO  # noqa: F401 - tests import it from here

# tiny, fast APPO settings shared by every e2e run (2 workers x 4 envs, one 256-step minibatch per batch)
FAST = [
    "--num_workers=2",
    "--num_envs_per_worker=4",
    "--worker_num_splits=2",
    "--batch_size=256",
    "--rollout=32",
    "--recurrence=32",
    "--num_batches_per_epoch=1",
    "--num_epochs=1",
    "--save_every_sec=5",
    "--experiment_summaries_interval=1",
    "--decorrelate_experience_max_seconds=0",
    "--device=cpu",
    "--seed=1",
]


def run_train(args: List[str], timeout: int = 300, module: str = "sf_kickstart.train") -> subprocess.CompletedProcess:
    return processes.run_train(args, timeout=timeout, module=module)


PLAIN_SF_TRAIN = """
import sys
from sample_factory.cfg.arguments import parse_full_cfg, parse_sf_args
from sample_factory.train import run_rl
from sf_kickstart.suites.registry import prepare_env

prepare_env(next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--env=")))
parser, _ = parse_sf_args(sys.argv[1:])
sys.exit(run_rl(parse_full_cfg(parser, sys.argv[1:])))
"""


def run_plain_sample_factory(args: List[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Train with Sample Factory's own runner and learner (not ours): only our env registration is used."""
    return processes.run_python(["-c", PLAIN_SF_TRAIN, *args], timeout=timeout)


def latest_checkpoint(exp_dir: str, policy: int = 0) -> Dict:
    path = experiments.latest_checkpoint(exp_dir, policy)
    assert path, f"no checkpoint in {exp_dir}"
    return checkpoints.load_checkpoint(path)


scalars = events.scalar_points


ERROR_MARKS = ("ERROR", "Error", "Traceback", "died", "Exception")


def describe(proc: subprocess.CompletedProcess) -> str:
    """The run's exit code, its error lines (a run's tail is mostly SF's profiling) and its output tails."""
    errors = [line for line in (proc.stderr or "").splitlines() if any(k in line for k in ERROR_MARKS)][:30]
    return (f"rc={proc.returncode}\n--- error lines ---\n" + "\n".join(errors)
            + f"\n--- stdout (tail) ---\n{proc.stdout[-4000:]}\n--- stderr (tail) ---\n{proc.stderr[-4000:]}")


def trained_experiment(proc: subprocess.CompletedProcess, train_dir: str, name: str) -> str:
    """The experiment dir `name` a training command (`proc`) wrote: it exited 0 and saved a checkpoint; else the run's
    output tails in the assertion."""
    exp = os.path.join(train_dir, name)
    assert proc.returncode == 0, describe(proc)
    assert experiments.latest_checkpoint(exp, 0), describe(proc)
    return exp


def make_teacher_dir(
    path: str, env: str = "minigrid_DoorKey-5x5", rnn_size: int = 32, extra=(), obs_space=None, action_space=None
) -> str:
    """A valid SF experiment dir (config.json + checkpoint) with untrained weights: fast to make."""
    import json

    from gymnasium import spaces
    from sample_factory.model.actor_critic import create_actor_critic

    from sf_kickstart.suites import minigrid
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args(
        [f"--env={env}", "--experiment=x", "--encoder_mlp_layers", "32", f"--rnn_size={rnn_size}", "--use_rnn=True", *extra]
    )
    obs_space = obs_space if obs_space is not None else minigrid.observation_space()
    model = create_actor_critic(cfg, obs_space, action_space if action_space is not None else spaces.Discrete(7))
    return write_experiment(path, cfg, model)


def write_experiment(path: str, cfg, model, env_steps: int = 100) -> str:
    """config.json (`cfg`, a Namespace or dict) and one checkpoint of `model` in Sample Factory's format."""
    import json

    os.makedirs(os.path.join(path, "checkpoint_p0"), exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(dict(cfg) if isinstance(cfg, dict) else vars(cfg), f)
    torch.save(
        dict(train_step=1, env_steps=env_steps, best_performance=-1e9, model=model.state_dict(), optimizer={},
             curr_lr=1e-4),
        os.path.join(path, "checkpoint_p0", f"checkpoint_000000001_{env_steps}.pth"),
    )
    return path


def make_experiment_dir(path: str, argv: List[str], plain_sf_mujoco: bool = False) -> str:
    """The experiment dir a run of `argv` would leave (config.json, a checkpoint), with untrained weights: fast to
    make. Parsed by `sf_kickstart.train`'s parser (its model on the run's --student_obs_keys, as training builds it),
    or with `plain_sf_mujoco` by Sample Factory's own MuJoCo example (`sf_examples.mujoco.train_mujoco`: SF's flags
    and MuJoCo defaults only, what a teacher trained by plain SF has)."""
    from sample_factory.model.actor_critic import create_actor_critic

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.setup import parse_args
    from sf_kickstart.suites.registry import prepare_env
    from sf_kickstart.teachers import student_env_info

    argv = [f"--experiment={os.path.basename(path)}", f"--train_dir={os.path.dirname(path)}", *argv]
    if plain_sf_mujoco:
        from sf_examples.mujoco.train_mujoco import parse_mujoco_cfg

        prepare_env(next(a.split("=", 1)[1] for a in argv if a.startswith("--env=")))  # SF's MuJoCo registration
        cfg = parse_mujoco_cfg(argv)
    else:
        cfg, _ = parse_args(argv)
    info = student_env_info(cfg, make_env_info(cfg))
    return write_experiment(path, cfg, create_actor_critic(cfg, info.obs_space, info.action_space))


# ------------------------------------------------------------------------------------------------ live runs (faults)
def start_train(args: List[str], log_path: str, extra_env: Dict[str, str] = None) -> subprocess.Popen:
    """`python -m sf_kickstart.train` in the background, stdout and stderr into log_path (no pipe to fill up)."""
    return processes.start_train(args, log_path, extra_env=extra_env, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """Tests may run as a shell's background job, whose children start with SIGINT ignored (kept across exec)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_until(predicate, timeout: float, proc: subprocess.Popen = None, what: str = "condition", poll: float = 0.2):
    """Poll predicate() until it returns something truthy; fail after timeout or if proc exits first."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run exited (rc={proc.returncode}) while waiting for {what}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def read_log(log_path: str) -> str:
    with open(log_path, errors="replace") as f:
        return f.read()


def logged_pid(log_path: str, component: str):
    """PID of a Sample Factory worker from its start-up line, e.g. 'ROLLOUT worker 0\\tpid 123\\tparent 45' or
    'InferenceWorker_p0-w0\\tpid 124\\tparent 45'; None while not logged yet."""
    import re

    m = re.search(re.escape(component) + r"\tpid (\d+)\tparent", read_log(log_path))
    return int(m.group(1)) if m else None
