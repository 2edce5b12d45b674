"""benchmarks/untaught_funnel.py: the sub-goal stages of a KeyCorridorS3R1 episode, with scripted policies whose
answers are known (the oracle's plan reaches every stage; the same plan without its drop stops at the ball), and the
checkpoint-at-mark choice."""

from __future__ import annotations

import numpy as np

from benchmarks import untaught_funnel as uf
from benchmarks.minigrid_reference_scores import DROP, oracle_plan
from sf_kickstart.suites import minigrid as suite


class Scripted:
    """Plays a fixed action list, then turns left forever."""

    def __init__(self, actions):
        self.actions = list(actions)
        self.t = 0

    def reset(self):
        self.t = 0

    def step(self, obs):
        a = self.actions[self.t] if self.t < len(self.actions) else 0
        self.t += 1
        p = np.zeros(suite.NUM_ACTIONS)
        p[a] = 1.0
        return p, a


def _plan(seed):
    env = suite.MinigridTaskEnv(uf.TASK)
    env.reset(seed=seed)
    return env, oracle_plan(env.env)


def test_the_oracles_plan_reaches_every_stage():
    env, plan = _plan(20_000)
    actions = np.zeros(suite.NUM_ACTIONS)
    seen = uf.episode_stages(Scripted(plan), env, 20_000, actions)
    assert seen == dict.fromkeys(uf.STAGES, True)
    assert actions.sum() == len(plan) and actions[DROP] >= 1


def test_without_the_drop_it_stops_at_the_ball():
    env, plan = _plan(20_001)
    no_drop = [a for a in plan if a != DROP]
    seen = uf.episode_stages(Scripted(no_drop), env, 20_001, np.zeros(suite.NUM_ACTIONS))
    assert seen["key"] and seen["unlocked"] and seen["at ball"]
    assert not seen["dropped"] and not seen["success"]


def test_doing_nothing_reaches_no_stage():
    env, _ = _plan(20_002)
    actions = np.zeros(suite.NUM_ACTIONS)
    seen = uf.episode_stages(Scripted([]), env, 20_002, actions)
    assert not any(seen.values())
    assert actions[0] == env.max_steps  # turned left until the time limit


def test_the_oracle_step_probabilities_of_a_scripted_oracle_are_one():
    env, plan = _plan(10_000)
    probs = uf.oracle_step_probs(Scripted(plan), env, [10_000])
    assert probs == {"p(forward) at the oracle's forward": 1.0, "p(drop) at the oracle's drop": 1.0}


def test_the_checkpoint_at_a_mark_is_the_newest_at_or_below_it(tmp_path):
    for frames in (1024, 99_328, 100_352, 250_880):
        (tmp_path / f"checkpoint_{frames // 1024:09d}_{frames}.pth").write_bytes(b"")
    (tmp_path / "best_000000097_99328_reward_0.5.pth").write_bytes(b"")  # a best_ file is not a periodic checkpoint
    found = uf.checkpoints(str(tmp_path))
    assert sorted(found) == [1024, 99_328, 100_352, 250_880]
    assert uf.at_mark(found, 100_000)[0] == 99_328
    assert uf.at_mark(found, 250_880)[0] == 250_880
    assert uf.at_mark(found, 1000) is None
