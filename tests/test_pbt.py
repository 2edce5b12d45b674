"""PBT over λ: α and every ρ_i are mutated, stay >= 0, can reach 0, reach the learner, and survive exploit."""

from __future__ import annotations

import json
import random

import pytest

from tests.e2e_utils import FAST, describe, make_teacher_dir, run_train, scalars


class _FakeRunner:
    """What PBT reads of SF's runner at construction and in on_init: the event loop and the env's reward shaping."""

    def __init__(self):
        from types import SimpleNamespace

        from signal_slot.signal_slot import EventLoop

        self.event_loop = EventLoop("test_loop")
        self.env_info = SimpleNamespace(reward_shaping_scheme=None)
        self.env_steps = {}
        self.writers = {}


def _pbt(num_policies=3, mutation_rate=1.0, zero_below=1e-3, train_dir="/nonexistent/sf_kickstart_test_pbt"):
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.populations.pbt import KickstartPBT
    from sf_kickstart.sf.storage import KickstartLayout
    from sf_kickstart.teachers import TeacherSpec
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args(["--env=minigrid_suite", "--experiment=x", f"--train_dir={train_dir}",
                         f"--num_policies={num_policies}", "--with_pbt=True"])
    cfg = AttrDict(vars(cfg))
    cfg.pbt_mutation_rate = mutation_rate
    cfg.kickstart_pbt_zero_below = zero_below
    layout = KickstartLayout(1, 1, 7, specs=[TeacherSpec("/t/a", rho=1.0), TeacherSpec("/t/b", rho=0.5)])
    return KickstartPBT(cfg, _FakeRunner(), layout), cfg


def test_perturbation_mutates_alpha_and_each_rho_and_sf_params():
    random.seed(0)
    pbt, cfg = _pbt()
    pcfg = {"learning_rate": cfg.learning_rate, "exploration_loss_coeff": cfg.exploration_loss_coeff,
            "kickstart_lambda": 1.0, "kickstart_rho": {"a": 1.0, "b": 0.5}}
    new = pbt._perturb_cfg(pcfg)
    assert new["kickstart_lambda"] != 1.0
    assert new["kickstart_rho"]["a"] != 1.0 and new["kickstart_rho"]["b"] != 0.5
    assert new["learning_rate"] != cfg.learning_rate
    assert pcfg["kickstart_rho"] == {"a": 1.0, "b": 0.5}  # the source is not modified


def test_explore_is_the_papers_perturb_or_resample():
    random.seed(2)
    pbt, _ = _pbt()
    pbt.resample_prob = 0.0
    seen = {round(pbt._explore(1.0, 1.0, 0.0), 9) for _ in range(50)}
    assert seen == {1.2, 0.8}
    resampled = [pbt._explore(5.0, 1.0, 1.0) for _ in range(200)]
    assert all(0.0 <= v <= 2.0 for v in resampled) and max(resampled) > 1.5 and min(resampled) < 0.5
    assert pbt._explore(0.0, 1.0, 0.0) == 0.0  # 0 stays 0 under multiplication


def test_initial_population_is_resampled_except_member_zero_and_a_restarted_one_is_kept(tmp_path):
    """KickstartPBT.on_init itself (over SF's): a fresh population gets α and ρ_i, member 0 at the flags' values,
    every other member at a resample; what was drawn is saved to policy_XX_cfg.json and a restarted run reads it back."""
    random.seed(3)
    pbt, cfg = _pbt(num_policies=4, train_dir=tmp_path)
    pbt.on_init(pbt.runner)
    lambdas = [pbt.policy_cfg[p]["kickstart_lambda"] for p in range(4)]
    rhos = [pbt.policy_cfg[p]["kickstart_rho"] for p in range(4)]
    assert lambdas[0] == float(cfg.kickstart_lambda) and rhos[0] == {"a": 1.0, "b": 0.5}
    assert len(set(lambdas)) == 4 and all(0.0 <= v <= 2.0 * cfg.kickstart_lambda for v in lambdas)
    assert all(r != rhos[0] for r in rhos[1:]) and all(0.0 <= r["a"] <= 2.0 and 0.0 <= r["b"] <= 1.0 for r in rhos)
    assert pbt.policy_cfg[0]["learning_rate"] == cfg.learning_rate  # SF's own keys: SF's rule, member 0 unmutated
    saved = [json.loads((tmp_path / "x" / f"policy_{p:02d}_cfg.json").read_text()) for p in range(4)]
    assert saved == pbt.policy_cfg

    random.seed(4)  # other draws: a restarted population must not make any
    restarted, _ = _pbt(num_policies=4, train_dir=tmp_path)
    restarted.on_init(restarted.runner)
    assert restarted.policy_cfg == saved


def test_values_stay_nonnegative_and_can_reach_zero():
    random.seed(1)
    pbt, _ = _pbt(zero_below=0.05)
    pcfg = {"kickstart_lambda": 0.06, "kickstart_rho": {"a": 0.06, "b": 3.0}}
    reached_zero = False
    for _ in range(200):
        pcfg = pbt._perturb_cfg(pcfg)
        assert pcfg["kickstart_lambda"] >= 0 and all(v >= 0 for v in pcfg["kickstart_rho"].values())
        reached_zero |= pcfg["kickstart_lambda"] == 0.0
    assert reached_zero


@pytest.mark.e2e
def test_population_of_four_mutates_lambda_and_the_learners_follow(tmp_path):
    teacher = make_teacher_dir(str(tmp_path / "teacher"))
    proc = run_train(
        [
            "--env=minigrid_suite",
            "--experiment=pbt",
            f"--train_dir={tmp_path}",
            f"--teacher={teacher}",
            "--with_pbt=True",
            "--num_policies=4",
            "--pbt_period_env_steps=1000",
            "--pbt_start_mutation=0",
            "--pbt_replace_reward_gap=0",
            "--pbt_replace_reward_gap_absolute=0",
            "--pbt_mutation_rate=1.0",
            "--kickstart_schedule=constant",
            "--encoder_mlp_layers",
            "32",
            "--rnn_size=32",
            "--train_for_env_steps=4000",
            "--stats_avg=5",
            *FAST,
        ],
        timeout=400,
    )
    assert proc.returncode == 0, describe(proc)
    exp = tmp_path / "pbt"
    p1 = json.loads((exp / "policy_01_cfg.json").read_text())
    assert "kickstart_lambda" in p1 and "kickstart_rho" in p1
    alphas = [v for _, v in scalars(str(exp), "kickstart/alpha", policy=1)]
    assert alphas, "no kickstart summaries for policy 1"
    assert any(abs(a - 1.0) > 1e-6 for a in alphas), "mutated α never reached learner 1"
    rhos = [v for _, v in scalars(str(exp), "kickstart/rho_teacher", policy=1)]
    assert rhos and any(abs(r - 1.0) > 1e-6 for r in rhos), "mutated ρ never reached learner 1"
    # every α / ρ / lr the learner trained with is one PBT assigned to this member (never one loaded from another
    # member's checkpoint on exploit: SF 2.1.1 let the source's lr overwrite the mutated one)
    def assigned(tag):
        return {round(v, 5) for _, v in scalars(str(exp), f"zz_pbt/cfg_{tag}", policy=1)}

    assert assigned("kickstart_lambda"), "PBT did not log its assignments"
    assert {round(a, 5) for a in alphas} <= assigned("kickstart_lambda")
    assert {round(r, 5) for r in rhos} <= assigned("kickstart_rho_teacher")
    lrs = {round(v, 8) for _, v in scalars(str(exp), "train/lr", policy=1)}
    assert lrs <= {round(v, 8) for _, v in scalars(str(exp), "zz_pbt/cfg_learning_rate", policy=1)}
    # a policy replaced by another logs where its weights and λ state came from
    exploits = {p: scalars(str(exp), "kickstart/pbt_exploit_from", policy=p) for p in range(4)}
    assert any(exploits.values()), "no exploit happened with zero reward gaps"
    lambdas = {json.loads((exp / f"policy_{p:02d}_cfg.json").read_text())["kickstart_lambda"] for p in range(4)}
    assert len(lambdas) >= 2, "the population's λ did not spread"


@pytest.mark.parametrize("explore_all", [True, False])
def test_member_zero_explores_like_the_others_unless_told(explore_all):
    """SF keeps member 0 as an unmutated reference; the paper's PBT (explore_all, the default) perturbs it too. A member
    in the top fraction is left alone either way."""
    random.seed(4)
    pbt, cfg = _pbt(num_policies=4)
    pbt.explore_all = explore_all
    cfg.pbt_target_objective = "suite_score"
    cfg.pbt_replace_reward_gap = 0.0
    base = {"learning_rate": cfg.learning_rate, "exploration_loss_coeff": cfg.exploration_loss_coeff}
    pbt.policy_cfg = {p: dict(base, kickstart_lambda=1.0 + p, kickstart_rho={"a": 1.0, "b": 0.5}) for p in range(4)}
    pbt.policy_reward_shaping = {p: {} for p in range(4)}
    stats = {"suite_score": [[10.0], [50.0], [40.0], [20.0]]}  # top: 1, 2; bottom: 3, 0
    pbt._update_policy(1, stats)
    assert pbt.replacement_policy[1] is None and pbt.policy_cfg[1]["kickstart_lambda"] == 2.0
    pbt._update_policy(0, stats)
    donor = pbt.replacement_policy[0]
    assert donor in (1, 2)
    if explore_all:
        assert pbt.policy_cfg[0]["kickstart_lambda"] != pbt.policy_cfg[donor]["kickstart_lambda"]
        assert pbt.policy_cfg[0] is not pbt.policy_cfg[donor]
    else:
        assert pbt.policy_cfg[0] == pbt.policy_cfg[donor]
