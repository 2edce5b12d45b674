"""The student's env, probed in the main process before any worker starts (ground floor: no project import above
`errors`): its EnvInfo (spaces), a few raw observations, and the same probe in a spawned process as SF's workers will
make it, with a timeout instead of SF 2.1.1's unbounded wait."""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from sample_factory.algo.utils.env_info import extract_env_info
from sample_factory.algo.utils.make_env import make_env_func_batched
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.errors import UserError


class EnvCreationError(UserError):
    """The student's env cannot be created in a fresh process (as SF's workers will make it), or not in time."""


def make_env_info(cfg):
    env = make_env_func_batched(cfg, env_config=AttrDict(worker_index=0, vector_index=0, env_id=0), render_mode=None)
    try:
        return extract_env_info(env, cfg)
    finally:
        env.close()


def probe_observations(cfg, steps: int = 16) -> Dict[str, torch.Tensor]:
    """Raw observations from the student's env (reset, then random actions), concatenated over steps: what the
    teachers are checked on before any worker starts."""
    env = make_env_func_batched(cfg, env_config=AttrDict(worker_index=0, vector_index=0, env_id=0), render_mode=None)
    try:
        obs, _ = env.reset(seed=cfg.seed)
        seen = [obs]
        for _ in range(steps - 1):
            actions = [env.action_space.sample() for _ in range(env.num_agents)]
            obs, *_ = env.step(actions)
            seen.append(obs)
    finally:
        env.close()
    return {k: torch.cat([torch.as_tensor(np.asarray(o[k])) for o in seen]) for k in seen[0]}


def probe_env_info(cfg, timeout_s: float = 600.0):
    """Create the env once in a spawned process, exactly as SF's workers will, and return its EnvInfo.

    SF 2.1.1 does the same in `obtain_env_info_in_a_separate_process` but waits on `q.get()` with no timeout, so an
    env that cannot be created in a fresh process (e.g. ale-py envs not registered there) hangs the run forever.
    Here a dead process is an error with its exit code, raised before any worker starts."""
    import multiprocessing
    import queue as queue_mod
    import time

    from sample_factory.algo.utils.context import sf_global_context
    from sample_factory.algo.utils.env_info import spawn_tmp_env_and_get_info

    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=spawn_tmp_env_and_get_info, args=(sf_global_context(), q, cfg), daemon=True)
    p.start()
    deadline = time.time() + timeout_s
    try:
        while True:
            try:
                return q.get(timeout=0.5)
            except queue_mod.Empty:
                if not p.is_alive():
                    try:
                        return q.get(timeout=1.0)  # result may still be in flight
                    except queue_mod.Empty:
                        raise EnvCreationError(
                            f"Could not create env {cfg.env!r} in a worker process (exit code {p.exitcode}); "
                            f"see the traceback above"
                        ) from None
                if time.time() > deadline:
                    raise EnvCreationError(f"Creating env {cfg.env!r} took more than {timeout_s:.0f} s")
    finally:
        if p.is_alive():
            p.join(5.0)
        if p.is_alive():
            p.terminate()
