"""What one does with a continuous-control agent (issue 21, item 6), in this process: evaluate, enjoy, the zoo listing
and the report on MuJoCo agents, without training (the experiment dirs are what a run leaves, untrained weights).

  * `python -m sf_kickstart.evaluate` on a Gaussian student next to its plain-SF teacher: the `mean_return` score
    kind with bootstrap CIs, greedy = SF's `argmax_actions` (the Gaussian's mean), sampled actions otherwise, a 1-D Box
    action stays an array (gymnasium's MuJoCo envs refuse a scalar);
  * a `_pomdp` student restricted to its partial key (--student_obs_keys=obs) next to its privileged teacher, which
    reads its "obs" from the env's "state" as in training (its --teacher_obs_map), and one clear error without that map;
  * `python -m sf_kickstart.enjoy`: the restricted student plays (SF's enjoy built the model on every key), a video
    with the GL backend this machine has, and without one a single error naming MUJOCO_GL before anything is played;
  * `python -m sf_kickstart.zoo`: action space, score kind, and "yes, with --teacher_obs_map=obs:state";
  * `python -m sf_kickstart.report` on Box-only runs: no `action_agreement`, the Gaussian and value diagnostics shown,
    a privileged teacher's return is its pomdp student's reference.
"""

from __future__ import annotations

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.e2e_utils import make_experiment_dir

pytest.importorskip("mujoco")

ENV, POMDP = "mujoco_hopper", "mujoco_hopper_pomdp"
TINY = ["--encoder_mlp_layers", "16", "16", "--device=cpu"]
EVAL = ["--episodes=4", "--envs_per_task=2", "--no_progress"]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    """A plain-SF MuJoCo teacher (Sample Factory's own parser and defaults: learned log-std, normalised inputs and
    returns), a student kickstarted from it, a recurrent `_pomdp` student restricted to "obs" whose teacher reads
    "state", and a plain-SF teacher on a 1-D action space (InvertedPendulum)."""
    root = str(tmp_path_factory.mktemp("continuous_agents"))
    teacher = make_experiment_dir(os.path.join(root, "teacher"), [f"--env={ENV}", *TINY], plain_sf_mujoco=True)
    make_experiment_dir(os.path.join(root, "student"), [f"--env={ENV}", f"--teacher={teacher}", "--kickstart_value_coeff=0.3",
                                                        "--encoder_mlp_layers", "32", "--device=cpu"])
    make_experiment_dir(os.path.join(root, "pomdp_student"), [
        "--preset=mujoco_pomdp_student.yaml", f"--env={POMDP}", f"--teacher={teacher}", "--teacher_obs_map=obs:state",
        "--encoder_mlp_layers", "16", "--rnn_size=8", "--device=cpu"])
    make_experiment_dir(os.path.join(root, "pendulum"), ["--env=mujoco_pendulum", *TINY], plain_sf_mujoco=True)
    return root


def _evaluate(train_dir, experiment, *args) -> dict:
    from sf_kickstart.agents.evaluate import main

    assert main([os.path.join(train_dir, experiment), f"--train_dir={train_dir}", *EVAL, *args]) == 0
    policy = "sampled" if "--policy=sampled" in args else "greedy"
    with open(os.path.join(train_dir, experiment, "evaluation", f"report_{policy}.json")) as f:
        return json.load(f)


def _check_mean_return_scores(scores: dict, task: str) -> None:
    assert scores["score_kind"] == "mean_return"
    t = scores["tasks"][task]
    assert len(t["returns"]) == 4 and t["mean_return"] == pytest.approx(np.mean(t["returns"]))
    lo, hi = t["mean_return_ci"]
    assert lo <= t["mean_return"] <= hi and lo < hi
    assert t["normalized"] is None and t["score"] == t["mean_return"] and t["score_ci"] == [lo, hi]
    assert scores["suite_score"] == t["mean_return"] and scores["suite_score_ci"] == pytest.approx([lo, hi])


def test_evaluate_a_continuous_student_next_to_its_plain_sf_teacher(train_dir):
    report = _evaluate(train_dir, "student")
    _check_mean_return_scores(report["student"], ENV)
    (teacher,) = report["teachers"]
    assert teacher["name"] == "teacher"
    _check_mean_return_scores(teacher, ENV)
    cmp = report["comparison"][ENV]
    assert cmp["teacher"] == "teacher" and cmp["verdict"] in ("beats", "ties", "trails")
    assert cmp["diff"] == pytest.approx(report["student"]["tasks"][ENV]["mean_return"] - teacher["tasks"][ENV]["mean_return"])
    md = open(os.path.join(train_dir, "student", "evaluation", "report_greedy.md")).read()
    assert "Score: mean return" in md and "| score (mean return) |" in md
    # sampled actions: other returns on the same episode seeds
    sampled = _evaluate(train_dir, "student", "--policy=sampled", "--no_teachers")
    assert sampled["student"]["policy"] == "sampled"
    assert sampled["student"]["tasks"][ENV]["returns"] != report["student"]["tasks"][ENV]["returns"]


class _Recorder(gym.Wrapper):
    """Keeps (observation, action) of every step."""

    def __init__(self, env, log):
        super().__init__(env)
        self.log, self.last = log, None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.last = obs
        return obs, info

    def step(self, action):
        self.log.append((self.last, np.array(action, copy=True)))
        obs, *rest = self.env.step(action)
        self.last = obs
        return (obs, *rest)


def _recorded_play(monkeypatch, train_dir, experiment, env, greedy):
    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs

    from sf_kickstart.agents import evaluate
    from sf_kickstart.agents.agent import experiment_cfg, load_agent
    from sf_kickstart.envprobe import make_env_info

    log = []
    create = evaluate.create_env
    monkeypatch.setattr(evaluate, "create_env", lambda *a, **k: _Recorder(create(*a, **k), log))
    cfg = experiment_cfg(os.path.join(train_dir, experiment))
    info = make_env_info(cfg)
    agent = load_agent(os.path.join(train_dir, experiment), info.obs_space, info.action_space)
    returns = evaluate.play(agent, cfg, {env: env}, episodes=1, greedy=greedy, envs_per_task=1)
    obs = torch.from_numpy(np.stack([o for o, _ in log]))
    with torch.no_grad():
        agent.model(prepare_and_normalize_obs(agent.model, {"obs": obs}), torch.zeros(len(log), agent.rnn_size))
    means = agent.model.action_distribution().means
    return returns, np.stack([a for _, a in log]), means.numpy()


def test_greedy_plays_the_gaussian_mean_and_sampled_does_not(train_dir, monkeypatch):
    returns, actions, means = _recorded_play(monkeypatch, train_dir, "student", ENV, greedy=True)
    assert actions.shape == means.shape and actions.shape[1] == 3  # Hopper: Box(3), one array per step
    assert np.allclose(actions, means, atol=1e-5)  # SF's argmax_actions of a Gaussian: its mean
    again, _, _ = _recorded_play(monkeypatch, train_dir, "student", ENV, greedy=True)
    assert again == returns  # deterministic
    _, actions, means = _recorded_play(monkeypatch, train_dir, "student", ENV, greedy=False)
    assert not np.allclose(actions, means, atol=1e-2)  # sampled around the mean (σ = --initial_stddev = 1)


def test_a_one_dimensional_box_action_stays_an_array(train_dir, monkeypatch):
    """InvertedPendulum's Box(1,): an `.item()` scalar is refused by gymnasium's MuJoCo env (Action dimension mismatch)."""
    _, actions, means = _recorded_play(monkeypatch, train_dir, "pendulum", "mujoco_pendulum", greedy=True)
    assert actions.shape[1:] == (1,) and np.allclose(actions, means, atol=1e-5)
    _check_mean_return_scores(_evaluate(train_dir, "pendulum")["student"], "mujoco_pendulum")


def test_a_pomdp_student_next_to_its_privileged_teacher(train_dir):
    from sf_kickstart.agents.agent import experiment_cfg, load_agent
    from sf_kickstart.envprobe import make_env_info

    exp = os.path.join(train_dir, "pomdp_student")
    cfg = experiment_cfg(exp)
    info = make_env_info(cfg)
    student = load_agent(exp, info.obs_space, info.action_space)
    assert student.obs_keys == student.input_keys == ["obs"] and student.rnn_size == 8
    teacher = load_agent(os.path.join(train_dir, "teacher"), info.obs_space, info.action_space, teacher_of=cfg,
                         obs_map={"obs": "state"})
    assert teacher.obs_keys == ["obs"] and teacher.input_keys == ["state"]  # its "obs" is the env's full state
    obs = {k: np.zeros((2, *s.shape)) for k, s in info.obs_space.spaces.items()}
    assert teacher.view(obs)["obs"].shape == (2, 11) and student.view(obs)["obs"].shape == (2, 5)

    report = _evaluate(train_dir, "pomdp_student")
    _check_mean_return_scores(report["student"], POMDP)
    (t,) = report["teachers"]
    _check_mean_return_scores(t, POMDP)
    assert t["name"] == "teacher" and report["comparison"][POMDP]["teacher"] == "teacher"


def test_a_privileged_teacher_without_its_obs_map_is_one_error(train_dir, capsys):
    from sf_kickstart.agents.evaluate import main

    rc = main([os.path.join(train_dir, "pomdp_student"), f"--teacher={os.path.join(train_dir, 'teacher')}", *EVAL])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("sf_kickstart: error: Teacher 'teacher' observation space does not match")
    assert "e.g. --teacher_obs_map=obs:state" in err[-1]
    assert main([os.path.join(train_dir, "pomdp_student"), f"--teacher={os.path.join(train_dir, 'teacher')}",
                 "--teacher_obs_map=obs:state", *EVAL, "--force"]) == 0


# ------------------------------------------------------------------------------------------------------------ enjoy
def _enjoy(train_dir, experiment, *args) -> int:
    from sf_kickstart.agents.enjoy import main

    return main([f"--experiment={experiment}", f"--train_dir={train_dir}", "--device=cpu", *args])


def _frames(path) -> int:
    import cv2

    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_enjoy_plays_a_student_restricted_to_its_own_keys(train_dir):
    assert _enjoy(train_dir, "pomdp_student", "--no_render", "--max_num_frames=30") == 0


def _working_gl_backend():
    from sf_kickstart.suites import mujoco

    return next((b for b in mujoco.HEADLESS_GL if mujoco.gl_failure(b) is None), None)


def test_enjoy_records_a_mujoco_video_with_the_gl_backend_this_machine_has(train_dir, monkeypatch, capsys):
    backend = _working_gl_backend()
    if backend is None:
        pytest.skip("no MuJoCo GL backend (egl, osmesa) works on this machine: the error path is tested below")
    monkeypatch.setenv("MUJOCO_GL", "")  # unset: enjoy picks the first backend that renders
    assert _enjoy(train_dir, "teacher", "--save_video", "--video_frames=12", "--video_name=hopper") == 0
    assert os.environ["MUJOCO_GL"] == backend
    video = os.path.join(train_dir, "teacher", "hopper.mp4")
    assert f"Video (12 frames): {video}" in capsys.readouterr().out
    assert _frames(video) == 12


def test_enjoy_without_a_gl_backend_is_one_error_before_anything_is_played(train_dir, monkeypatch, capsys):
    import sample_factory.enjoy as sf_enjoy

    from sf_kickstart.suites import mujoco

    tried = []
    monkeypatch.setattr(mujoco, "gl_failure", lambda b: tried.append(b) or f"no {b} library here (simulated)")
    monkeypatch.setattr(sf_enjoy, "enjoy", lambda cfg: pytest.fail("SF's enjoy started"))
    monkeypatch.setenv("MUJOCO_GL", "")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert _enjoy(train_dir, "teacher", "--save_video", "--video_frames=12", "--video_name=never") == 2
    assert tried == ["egl", "osmesa"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("sf_kickstart: error:")]) == 1
    line = err[-1]
    assert line.startswith("sf_kickstart: error: ") and "MUJOCO_GL is not set" in line
    for hint in ("MUJOCO_GL=egl", "MUJOCO_GL=osmesa", "libegl1", "libosmesa6", "--no_render", "no egl library here"):
        assert hint in line
    assert not os.path.exists(os.path.join(train_dir, "teacher", "never.mp4"))
    # MUJOCO_GL set: that backend alone is checked, and named
    tried.clear()
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert _enjoy(train_dir, "teacher", "--save_video", "--video_frames=12") == 2
    assert tried == ["osmesa"] and "MUJOCO_GL=osmesa: no osmesa library here" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------- zoo
def test_zoo_lists_continuous_teachers_with_action_space_and_score_kind(train_dir, capsys):
    from sf_kickstart.agents.zoo import main

    _evaluate(train_dir, "teacher")  # its own env: a cached mean return
    capsys.readouterr()
    assert main([f"--train_dir={train_dir}", f"--env={POMDP}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split(" | ")
    rows = {line.split(" | ")[0]: dict(zip(head, line.split(" | "))) for line in lines[2:]}
    teacher = rows["teacher"]
    assert teacher["env"] == ENV and teacher["architecture"] == "MLP 16-16" and teacher["action space"] == "Box(3)"
    assert teacher["score kind"] == "mean return" and float(teacher["evaluated score"]) == pytest.approx(
        json.load(open(os.path.join(train_dir, "teacher", "evaluation", "scores_greedy_p0.json")))["suite_score"], abs=0.05)
    assert teacher[f"can teach {POMDP}"] == "yes, with --teacher_obs_map=obs:state"
    assert rows["pomdp_student"][f"can teach {POMDP}"] == "yes"  # it reads "obs", there by name
    assert rows["pomdp_student"]["architecture"] == "MLP 16 + GRU 8"
    assert rows["pendulum"][f"can teach {POMDP}"] == "no" and rows["pendulum"]["action space"] == "Box(1)"
    assert rows["zoo:minigrid_suite_small"]["action space"] == "Discrete(7)"
    assert rows["zoo:minigrid_suite_small"]["score kind"] == "suite score"


# ----------------------------------------------------------------------------------------------------------- report
def test_report_of_continuous_runs_shows_their_diagnostics(tmp_path):
    from sf_kickstart.report import Options, analyse, cli, load_experiments
    from tests.test_report import STEPS, make_exp

    root = str(tmp_path)
    teacher = make_exp(root, "cont", "cheetah_teacher", 0, {0: ({"reward/reward": lambda k: 100 * k}, STEPS)},
                       env="mujoco_halfcheetah", kickstart_schedule=None, kickstart_lambda=None)
    ks = {"reward/reward": lambda k: 80 * k, "kickstart/lambda": lambda k: max(0.0, 1 - k / 5),
          "kickstart/alpha": lambda k: max(0.0, 1 - k / 5), "kickstart/kl_teacher_student": lambda k: 0.5,
          "kickstart/teacher_entropy": lambda k: 4.0, "kickstart/loss": lambda k: 0.0,
          "kickstart/mean_squared_error": lambda k: 0.2, "kickstart/teacher_std": lambda k: 0.4,
          "kickstart/student_std": lambda k: 0.6, "kickstart/value_loss": lambda k: 0.05,
          "kickstart/value_mse": lambda k: 0.1}  # no action_agreement: Box-only runs do not write it
    make_exp(root, "cont", "pomdp_ks_seed0", 0, {0: (ks, STEPS)}, teacher=teacher, env="mujoco_halfcheetah_pomdp",
             kickstart_schedule="linear", kickstart_end_frames=5000, kickstart_value_coeff=0.3)
    make_exp(root, "cont", "pomdp_scratch_seed0", 0, {0: ({"reward/reward": lambda k: 50 * k}, STEPS)},
             env="mujoco_halfcheetah_pomdp", kickstart_schedule=None)
    a = analyse(load_experiments([os.path.join(root, "cont")]), Options())
    d = a.diagnostics["pomdp_ks"]
    assert d["action_agreement"] is None
    assert (d["mean_squared_error"], d["teacher_std"], d["student_std"], d["value_loss"], d["value_mse"]) == \
        pytest.approx((0.2, 0.4, 0.6, 0.05, 0.1))
    assert a.metric == "reward/reward"
    assert a.teachers["pomdp_ks"] == ("cheetah_teacher", pytest.approx(1000.0))  # pomdp: its full-state task's return

    out = str(tmp_path / "rep")
    assert cli.main([os.path.join(root, "cont"), "--out", out]) == 0
    md = open(os.path.join(out, "report.md")).read()
    diag = md.split("## Kickstarting diagnostics", 1)[1].split("\n## ", 1)[0]
    header = [c.strip() for c in diag.strip().splitlines()[2].strip("|").split("|")]
    assert header == ["method", "`lambda`", "`alpha`", "`kl_teacher_student`", "`teacher_entropy`", "`loss`",
                      "`mean_squared_error`", "`teacher_std`", "`student_std`", "`value_loss`", "`value_mse`"]
    assert "not comparable" not in md
