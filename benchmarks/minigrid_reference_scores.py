"""Measure RANDOM_SCORES and REFERENCE_SCORES of the embedded MiniGrid suite, and the env wrapper's speed.

    python -m benchmarks.minigrid_reference_scores --episodes 200      # scores table (random + oracle)
    python -m benchmarks.minigrid_reference_scores --speed 2            # steps/s, raw MiniGrid vs suite wrapper

Random: uniformly random actions over Discrete(7), seeds 0..episodes-1 for the env, one action RNG per task.
Oracle: breadth-first search for the fewest steps to success, knowing the whole grid. Search state = agent position,
direction, carried object and the cells it changed (doors opened, objects picked up or dropped); transitions follow
MiniGrid's step rules (minigrid_env.py, plus KeyCorridor's "pick up the target" and Memory's "reach the matching
end, pickup acts as toggle"). Closing an open door is never searched (it cannot shorten a path) and neither is
'done' (a no-op). Every plan is replayed in the real env and must earn exactly the predicted return
1 - 0.9 * steps / max_steps, so a wrong model of the rules fails loudly instead of giving a wrong constant.
"""

from __future__ import annotations

import argparse
import time
from collections import deque

import gymnasium as gym
import minigrid  # noqa: F401
import numpy as np

from sf_kickstart.suites import minigrid as suite

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(6)
DIR_VEC = [(1, 0), (0, 1), (-1, 0), (0, -1)]
OVERLAP = {"goal", "floor", "lava"}
PICKABLE = {"key", "ball", "box"}


def _desc(obj):
    if obj is None:
        return None
    if obj.type == "door":
        return ("door", obj.color, bool(obj.is_open), bool(obj.is_locked))
    return (obj.type, obj.color)


def oracle_plan(env) -> list | None:
    """Shortest action sequence to success from the env's current (just reset) state, or None."""
    u = env.unwrapped
    base = {(i, j): _desc(u.grid.get(i, j)) for i in range(u.width) for j in range(u.height)}
    if any(d is not None and d[0] == "box" for d in base.values()):
        raise NotImplementedError("boxes are not modelled")
    kind = type(u).__name__
    target = _desc(u.obj) if kind == "KeyCorridorEnv" else None
    success_pos = tuple(u.success_pos) if kind == "MemoryEnv" else None
    failure_pos = tuple(u.failure_pos) if kind == "MemoryEnv" else None

    start = (tuple(int(v) for v in u.agent_pos), int(u.agent_dir), _desc(u.carrying), frozenset())
    parents = {start: None}
    frontier = deque([start])
    depth = {start: 0}
    while frontier:
        s = frontier.popleft()
        if depth[s] >= u.max_steps:
            continue
        (x, y), d, carrying, changes = s
        cells = dict(changes)
        fpos = (x + DIR_VEC[d][0], y + DIR_VEC[d][1])
        fcell = cells[fpos] if fpos in cells else base.get(fpos)
        for a in (LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE):
            act = TOGGLE if (kind == "MemoryEnv" and a == PICKUP) else a
            pos, nd, ncarry, nchanges, done = (x, y), d, carrying, changes, False
            if act == LEFT:
                nd = (d - 1) % 4
            elif act == RIGHT:
                nd = (d + 1) % 4
            elif act == FORWARD:
                passable = fcell is None or fcell[0] in OVERLAP or (fcell[0] == "door" and fcell[2])
                if fcell is not None and fcell[0] == "lava":
                    continue  # death
                if passable:
                    pos = fpos
                if fcell is not None and fcell[0] == "goal":
                    done = True
            elif act == PICKUP:
                if fcell is None or fcell[0] not in PICKABLE or carrying is not None:
                    continue
                ncarry = fcell
                nchanges = frozenset({**cells, fpos: None}.items())
                if target is not None and ncarry == target:
                    done = True
            elif act == DROP:
                if fcell is not None or carrying is None:
                    continue
                ncarry = None
                nchanges = frozenset({**cells, fpos: carrying}.items())
            elif act == TOGGLE:
                if fcell is None or fcell[0] != "door" or fcell[2]:
                    continue  # no-op, or closing an open door
                _, color, _, locked = fcell
                if locked and not (carrying is not None and carrying[0] == "key" and carrying[1] == color):
                    continue
                nchanges = frozenset({**cells, fpos: ("door", color, True, False)}.items())
            if success_pos is not None:
                if pos == failure_pos:
                    continue
                if pos == success_pos:
                    done = True
            ns = (pos, nd, ncarry, nchanges)
            if done:
                plan = [a]
                while parents[s] is not None:
                    s, a_prev = parents[s]
                    plan.append(a_prev)
                return plan[::-1]
            if ns not in parents:
                parents[ns] = (s, a)
                depth[ns] = depth[s] + 1
                frontier.append(ns)
    return None


def oracle_episode(gym_id: str, seed: int) -> tuple[float, int]:
    env = gym.make(gym_id, disable_env_checker=True)
    env.reset(seed=seed)
    max_steps = env.unwrapped.max_steps
    plan = oracle_plan(env)
    if plan is None:
        return 0.0, max_steps
    ret, terminated = 0.0, False
    for a in plan:
        _, r, terminated, truncated, _ = env.step(a)
        ret += r
        if terminated or truncated:
            break
    expected = 1 - 0.9 * len(plan) / max_steps
    assert terminated and abs(ret - expected) < 1e-6, f"{gym_id} seed {seed}: replay {ret} != planned {expected}"
    return ret, len(plan)


def random_episode(env, seed: int, rng: np.random.Generator) -> float:
    env.reset(seed=seed)
    ret, done = 0.0, False
    while not done:
        _, r, terminated, truncated, _ = env.step(int(rng.integers(suite.NUM_ACTIONS)))
        ret += r
        done = terminated or truncated
    return ret


def scores(episodes: int) -> None:
    print(f"{'task':18s} {'max_steps':>9s} {'random':>8s} {'rnd succ%':>9s} {'oracle':>8s} {'oracle steps':>12s}")
    for i, (task, gym_id) in enumerate(suite.TASKS):
        env = gym.make(gym_id, disable_env_checker=True)
        rng = np.random.default_rng(1000 + i)
        rnd = [random_episode(env, s, rng) for s in range(episodes)]
        orc = [oracle_episode(gym_id, s) for s in range(episodes)]
        steps = [n for _, n in orc]
        print(
            f"{task:18s} {env.unwrapped.max_steps:9d} {np.mean(rnd):8.4f} {100 * np.mean(np.array(rnd) > 0):8.1f}% "
            f"{np.mean([r for r, _ in orc]):8.4f} {np.mean(steps):12.1f}",
            flush=True,
        )


def speed(seconds: float) -> None:
    def run(env, secs):
        rng = np.random.default_rng(0)
        env.reset(seed=0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < secs:
            for a in rng.integers(suite.NUM_ACTIONS, size=256):
                _, _, term, trunc, _ = env.step(int(a))
                if term or trunc:
                    env.reset()
            n += 256
        return n / (time.perf_counter() - t0)

    # the machine is shared: alternate raw/wrapped in short rounds and keep each one's best round
    rounds = 4
    print(f"{'task':18s} {'raw steps/s':>12s} {'suite steps/s':>13s} {'ratio':>6s}")
    tot_raw, tot_wrapped = [], []
    for task, gym_id in suite.TASKS:
        raw_env, wrapped_env = gym.make(gym_id, disable_env_checker=True), suite.MinigridTaskEnv(task)
        raw = 0.0
        wrapped = 0.0
        for _ in range(rounds):
            raw = max(raw, run(raw_env, seconds / (2 * rounds)))
            wrapped = max(wrapped, run(wrapped_env, seconds / (2 * rounds)))
        tot_raw.append(raw)
        tot_wrapped.append(wrapped)
        print(f"{task:18s} {raw:12.0f} {wrapped:13.0f} {wrapped / raw:6.2f}", flush=True)
    raw, wrapped = np.mean(tot_raw), np.mean(tot_wrapped)
    print(f"{'mean':18s} {raw:12.0f} {wrapped:13.0f} {wrapped / raw:6.2f}")

    rng = np.random.default_rng(0)
    img = np.stack([rng.integers(0, n, size=(7, 7)) for n in (11, 6, 3)], axis=-1).astype(np.uint8)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        suite.encode_observation(img, 2)
    print(f"encode_observation: {1e6 * (time.perf_counter() - t0) / n:.2f} us/call")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--speed", type=float, default=0.0, help="seconds per task to time raw vs wrapped env (0: skip)")
    args = p.parse_args()
    if args.speed > 0:
        speed(args.speed)
    else:
        scores(args.episodes)


if __name__ == "__main__":
    main()
