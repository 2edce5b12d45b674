"""End to end on CPU, continuous control (issue 21, item 6): a Gaussian student (`mujoco_hopper`, Box(3) actions)
kickstarted from a plain-SF MuJoCo teacher (config from Sample Factory's own MuJoCo parser, untrained weights) keeps
its λ and frames across a resume and holds no teacher weight; an in-process PBT population of two exploits and
carries α and ρ; a Ray Tune member that exploits the student (its checkpoint installed as Tune's trial does it,
without Ray) trains its next interval with the explored α, ρ and lr from the student's frames; `evaluate` scores the
trained student; `enjoy` with a MuJoCo GL backend that cannot load is one error, exit 2.

Hopper: a random policy falls within ~20-60 steps, so short runs end episodes (SF writes reward/reward and PBT's
objective only from finished episodes). 1 worker, tiny nets, a few thousand frames each.
"""

from __future__ import annotations

import glob
import json
import os
import random
import shutil
import subprocess
import sys
import time

import pytest

from sf_kickstart.processes import python_env
from tests.e2e_utils import REPO, describe, latest_checkpoint, make_experiment_dir, run_train, scalars

pytestmark = pytest.mark.e2e
pytest.importorskip("mujoco")

ENV = "mujoco_hopper"
END = 6000  # linear λ: 1 -> 0 at 6000 frames
TINY = [
    "--num_workers=1", "--num_envs_per_worker=2", "--worker_num_splits=2", "--batch_size=128", "--rollout=32",
    "--num_batches_per_epoch=1", "--num_epochs=1", "--save_every_sec=5", "--experiment_summaries_interval=1",
    "--decorrelate_experience_max_seconds=0", "--device=cpu", "--seed=1", "--encoder_mlp_layers", "32", "32",
]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("continuous_e2e"))
    make_experiment_dir(os.path.join(root, "teacher"), [f"--env={ENV}", "--encoder_mlp_layers", "16", "16",
                                                        "--device=cpu"], plain_sf_mujoco=True)
    return root


def _student_args(train_dir, frames):
    return [f"--env={ENV}", "--experiment=student", f"--train_dir={train_dir}", "--teacher=teacher",
            "--kickstart_schedule=linear", f"--kickstart_end_frames={END}", "--kickstart_value_coeff=0.3",
            "--lr_schedule=constant", f"--train_for_env_steps={frames}", *TINY]


@pytest.fixture(scope="module")
def resumed(train_dir):
    first = run_train(_student_args(train_dir, 1500))
    assert first.returncode == 0, describe(first)
    exp = os.path.join(train_dir, "student")
    ck1 = latest_checkpoint(exp)
    second = run_train(_student_args(train_dir, 3000))
    assert second.returncode == 0, describe(second)
    return exp, ck1, latest_checkpoint(exp), first.stdout + first.stderr


def test_resume_keeps_lambda_and_the_checkpoint_holds_no_teacher(resumed, train_dir):
    from gymnasium import spaces
    from sample_factory.model.actor_critic import create_actor_critic
    from sample_factory.utils.attr_dict import AttrDict

    exp, ck1, ck2, log = resumed
    # what the run says of its continuous teacher: its action space, the divergence, the keys it reads
    assert "Teacher teacher: " in log and "(trained 100 frames, actions Box(3), cross_entropy, reads obs, rnn state 1" in log
    f1, f2 = ck1["env_steps"], ck2["env_steps"]
    assert 1500 <= f1 < f2 and f2 >= 3000
    for ck in (ck1, ck2):
        assert ck["kickstart"]["alpha"] == pytest.approx(max(0.0, 1 - ck["env_steps"] / END), abs=1e-6)
        assert ck["kickstart"]["rho"] == {"teacher": 1.0}
    after = [v for step, v in scalars(exp, "kickstart/lambda") if step > f1]
    assert after, "no λ summaries after the resume"
    assert max(after) <= 1 - f1 / END + 1e-6  # continues where the first run left off, not from 1.0
    assert scalars(exp, "kickstart/value_mse") and scalars(exp, "kickstart/teacher_std")
    # the teacher is not part of the student: its weights are the student's model's, its optimizer the student's
    with open(os.path.join(exp, "config.json")) as f:
        cfg = AttrDict(json.load(f))
    student = create_actor_critic(cfg, spaces.Dict({"obs": spaces.Box(-1, 1, (11,))}), spaces.Box(-1, 1, (3,)))
    assert set(ck2["model"]) == set(student.state_dict())
    assert not any("teacher" in k for k in ck2["model"])
    assert len(ck2["optimizer"]["param_groups"][0]["params"]) == len(list(student.parameters()))
    teacher = latest_checkpoint(os.path.join(train_dir, "teacher"))["model"]
    assert ck2["model"]["encoder.encoders.obs.mlp_head.0.weight"].shape[0] == 32 != \
        teacher["encoder.encoders.obs.mlp_head.0.weight"].shape[0]


def test_evaluate_scores_the_trained_continuous_student(resumed, train_dir):
    from sf_kickstart.agents.evaluate import main

    exp, _, ck2, _ = resumed
    assert main([exp, f"--train_dir={train_dir}", "--episodes=4", "--envs_per_task=2", "--no_progress"]) == 0
    report = json.load(open(os.path.join(exp, "evaluation", "report_greedy.json")))
    s = report["student"]
    assert s["score_kind"] == "mean_return" and s["env_steps"] == ck2["env_steps"]
    lo, hi = s["tasks"][ENV]["mean_return_ci"]
    assert lo <= s["tasks"][ENV]["mean_return"] <= hi
    assert [t["name"] for t in report["teachers"]] == ["teacher"] and ENV in report["comparison"]


def test_pbt_population_of_two_continuous_students_exploits_and_carries_lambda(train_dir):
    proc = run_train([
        f"--env={ENV}", "--experiment=pbt", f"--train_dir={train_dir}", "--teacher=teacher",
        "--with_pbt=True", "--num_policies=2", "--async_rl=True", "--pbt_period_env_steps=400",
        "--pbt_start_mutation=0", "--pbt_replace_fraction=0.5", "--pbt_replace_reward_gap=0",
        "--pbt_replace_reward_gap_absolute=0", "--pbt_mutation_rate=1.0", "--kickstart_schedule=constant",
        "--stats_avg=2", "--train_for_env_steps=2000", *TINY, "--num_envs_per_worker=4",
    ], timeout=400)
    assert proc.returncode == 0, describe(proc)
    exp = os.path.join(train_dir, "pbt")
    exploits = {p: scalars(exp, "kickstart/pbt_exploit_from", policy=p) for p in range(2)}
    assert any(exploits.values()), "no exploit with zero reward gaps"
    for p in range(2):
        pcfg = json.load(open(os.path.join(exp, f"policy_{p:02d}_cfg.json")))
        alphas = {round(v, 5) for _, v in scalars(exp, "kickstart/alpha", policy=p)}
        rhos = {round(v, 5) for _, v in scalars(exp, "kickstart/rho_teacher", policy=p)}
        assert alphas and rhos, f"no kickstart summaries for policy {p}"
        # every α / ρ the learner used is one PBT assigned to this member (explored values, carried on exploit)
        assert alphas <= {round(v, 5) for _, v in scalars(exp, "zz_pbt/cfg_kickstart_lambda", policy=p)}
        assert rhos <= {round(v, 5) for _, v in scalars(exp, "zz_pbt/cfg_kickstart_rho_teacher", policy=p)}
        assert set(pcfg) >= {"kickstart_lambda", "kickstart_rho"}
    explored = [v for p in range(2) for _, v in scalars(exp, "kickstart/alpha", policy=p)]
    assert any(abs(a - 1.0) > 1e-6 for a in explored), "no member trained with an explored α"


def test_tune_member_exploits_a_continuous_student_and_trains_with_the_explored_values(resumed, train_dir):
    """What `python -m sf_kickstart.tune` sets up and runs for a continuous population, without Ray: the driver's
    checks (metric, search space), then a Tune exploit as `populations.tune.trial` does it (the source member's
    reported checkpoint, here the resumed student's, installed for member 1, its values explored and written into it)
    and member 1's next interval (`sf_kickstart.train --restart_behavior=resume`, one run). Ray's scheduler choosing
    the exploit is `tests/test_tune.py`'s (env-agnostic)."""
    from sf_kickstart.populations.tune.cli import prepare
    from sf_kickstart.populations.tune.layout import CHECKPOINT_META, member_name
    from sf_kickstart.populations.tune.state import checkpoint_state
    from sf_kickstart.populations.tune.trial import install_checkpoint, interval_score, run_interval
    from sf_kickstart.experiments import latest_checkpoint as latest_path

    exp, _, donor, _ = resumed
    frames0 = donor["env_steps"]
    student_flags = [a for a in _student_args(train_dir, 0) if not a.startswith(("--experiment=", "--train_for"))]
    _, _, space, plan, _ = prepare([
        *student_flags, "--experiment=tune_pop", "--num_policies=2", "--pbt_period_env_steps=1000",
        "--train_for_env_steps=5000", "--num_cpus=2", "--tune_cpus_per_trial=1", "--tune_resample_probability=0",
        "--pbt_mutation_rate=1.0", "--stats_avg=2"])
    assert plan.metric == "reward/reward"  # no suite score on MuJoCo: the mean return ranks the members
    assert set(space.mutated) >= {"learning_rate", "kickstart_lambda", "kickstart_rho_teacher"}
    held = checkpoint_state(latest_path(exp))  # the source's values, as its checkpoint holds them
    assert held["kickstart_lambda"] == 1.0 and held["kickstart_rho_teacher"] == 1.0
    hp0 = {**space.initial(0), **{k: v for k, v in held.items() if k in space.defaults}}
    hp1 = space.explore(hp0, random.Random(0))
    assert all(hp1[k] != hp0[k] for k in ("learning_rate", "kickstart_lambda", "kickstart_rho_teacher"))

    reported = os.path.join(train_dir, "tune_report")  # what the source reported to Tune at its interval's end
    os.makedirs(reported)
    shutil.copy2(latest_path(exp), reported)
    with open(os.path.join(reported, CHECKPOINT_META), "w") as f:
        json.dump(dict(member=0, env_steps=frames0, hp=hp0), f)
    member = os.path.join(plan.root, member_name(1))
    assert install_checkpoint(reported, member)["member"] == 0
    checkpoint_state(latest_path(member), hp1)
    started = time.time()
    target = (frames0 // plan.interval + 1) * plan.interval
    run_interval(plan, 1, hp1, target, member)

    ck = latest_checkpoint(member)
    assert ck["env_steps"] >= target > frames0  # it went on from the source's frames
    assert ck["kickstart"]["alpha_scale"] == pytest.approx(hp1["kickstart_lambda"])  # the explored α scale, carried
    assert ck["kickstart"]["alpha"] == pytest.approx(hp1["kickstart_lambda"] * max(0.0, 1 - ck["env_steps"] / END),
                                                     abs=1e-6)  # on the source's schedule position
    assert ck["kickstart"]["rho"] == {"teacher": pytest.approx(hp1["kickstart_rho_teacher"])}
    after = lambda tag: [v for step, v in scalars(member, tag) if step > frames0]  # noqa: E731
    assert after("kickstart/rho_teacher") and after("train/lr") and after("kickstart/alpha")
    assert all(v == pytest.approx(hp1["kickstart_rho_teacher"]) for v in after("kickstart/rho_teacher"))
    assert all(v == pytest.approx(hp1["learning_rate"]) for v in after("train/lr"))
    assert max(after("kickstart/alpha")) <= hp1["kickstart_lambda"] * (1 - frames0 / END) + 1e-6
    assert interval_score(member, plan.metric, since=started) is not None  # the interval can be ranked


def test_enjoy_with_a_mujoco_gl_backend_that_cannot_load_exits_2(train_dir):
    from sf_kickstart.suites import mujoco

    if mujoco.gl_failure("osmesa") is None:
        pytest.skip("OSMesa works on this machine: no backend here fails to load")
    proc = subprocess.run(
        [sys.executable, "-m", "sf_kickstart.enjoy", "--experiment=teacher", f"--train_dir={train_dir}", "--save_video",
         "--video_frames=10", "--device=cpu"],
        cwd=REPO, env=python_env(extra_env={"MUJOCO_GL": "osmesa"}), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sf_kickstart: error:")]
    assert len(errors) == 1 and "MUJOCO_GL=osmesa" in errors[0] and "MUJOCO_GL=egl" in errors[0]
    assert not glob.glob(os.path.join(train_dir, "teacher", "*.mp4"))
