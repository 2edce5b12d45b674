"""Privileged teachers, in process: a teacher reads its own observation keys (mapped onto the student env's, its own
normaliser applied), the student's model is built on its `--student_obs_keys` only, and every bad input is one
error, exit code 2, naming the teacher's key and space and the student env's, before any worker starts."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from gymnasium import spaces

pytest.importorskip("mujoco")

from sample_factory.model.actor_critic import create_actor_critic  # noqa: E402

from sf_kickstart.suites import mujoco  # noqa: E402
from sf_kickstart.teachers import FrozenTeacher, TeacherBank, TeacherError, TeacherSpec  # noqa: E402
from sf_kickstart.teachers import inputs  # noqa: E402
from sf_kickstart.teachers.bank import SingleTeacher  # noqa: E402
from sf_kickstart.teachers.spec import parse_obs_map, parse_teacher_map, teacher_specs_from_cfg  # noqa: E402
from tests.e2e_utils import make_teacher_dir  # noqa: E402

POMDP = "mujoco_halfcheetah_pomdp"
FULL = spaces.Box(-np.inf, np.inf, (17,), np.float64)  # HalfCheetah-v4's observation
PARTIAL = spaces.Box(-np.inf, np.inf, (8,), np.float64)
ACTIONS = spaces.Box(-1.0, 1.0, (6,), np.float32)
STUDENT_SPACE = spaces.Dict({"obs": PARTIAL, "state": FULL})
SMALL = ["--use_rnn=False", "--encoder_mlp_layers", "16"]


@pytest.fixture(scope="module")
def cheetah_teacher(tmp_path_factory):
    """An untrained teacher for the plain `mujoco_halfcheetah` (its key "obs" is the full state), with observation
    normaliser statistics of its own (not the identity), as a plain-SF MuJoCo teacher has."""
    path = make_teacher_dir(str(tmp_path_factory.mktemp("teachers") / "cheetah_teacher"), env="mujoco_halfcheetah",
                            extra=SMALL, obs_space=spaces.Dict({"obs": FULL}), action_space=ACTIONS)
    ckpt_path = os.path.join(path, "checkpoint_p0", "checkpoint_000000001_100.pth")
    ckpt = torch.load(ckpt_path, weights_only=False)
    prefix = "obs_normalizer.running_mean_std.running_mean_std.obs."
    ckpt["model"][prefix + "running_mean"] = torch.linspace(-2, 2, 17, dtype=torch.float64)
    ckpt["model"][prefix + "running_var"] = torch.linspace(0.5, 4, 17, dtype=torch.float64)
    torch.save(ckpt, ckpt_path)
    return path


def student_obs(n=5, seed=0):
    """Raw observations of the pomdp env: "obs" is "state" without its velocities."""
    state = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 17)))
    return {"obs": state[:, np.setdiff1d(np.arange(17), mujoco.hidden_indices(POMDP))], "state": state}


# ------------------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    "value, expected",
    [
        (None, {}),
        ("obs:state", {"obs": "state"}),
        ("obs:state, task_id:task", {"obs": "state", "task_id": "task"}),
        (["obs:state", "a:b"], {"obs": "state", "a": "b"}),
        ({"obs": "state"}, {"obs": "state"}),  # a --teachers entry's obs_map: {obs: state}
    ],
)
def test_parse_obs_map(value, expected):
    assert parse_obs_map(value) == expected


@pytest.mark.parametrize("value", ["obs", "obs:", ":state", "a:b:c", "obs:state,obs:other", {"obs": 3}, 5])
def test_parse_obs_map_refuses_what_is_not_teacher_key_to_env_key(value):
    with pytest.raises(TeacherError, match="--teacher_obs_map"):
        parse_obs_map(value)


def test_teachers_map_entries_take_an_obs_map(tmp_path, cheetah_teacher):
    m = tmp_path / "map.yaml"
    m.write_text(f"{POMDP}: {{path: {cheetah_teacher}, obs_map: {{obs: state}}}}\n")
    [spec] = parse_teacher_map(str(m), None, [POMDP])
    assert spec.obs_map == {"obs": "state"} and spec.tasks == [POMDP]
    m.write_text(f"{POMDP}: {{path: {cheetah_teacher}, obs_map: 'obs:state'}}\n")
    assert parse_teacher_map(str(m), None, [POMDP])[0].obs_map == {"obs": "state"}
    m.write_text(f"a: {{path: {cheetah_teacher}, obs_map: 'obs:state'}}\nb: {{path: {cheetah_teacher}, obs_map: 'obs:x'}}\n")
    with pytest.raises(TeacherError, match="two different obs_map"):
        parse_teacher_map(str(m), None, ["a", "b"])


def test_teacher_obs_map_flag_is_the_single_teachers(cheetah_teacher, tmp_path):
    from sample_factory.utils.attr_dict import AttrDict

    cfg = AttrDict(teacher=cheetah_teacher, teachers=None, teacher_obs_map="obs:state", train_dir=str(tmp_path))
    assert teacher_specs_from_cfg(cfg, [POMDP])[0].obs_map == {"obs": "state"}
    with pytest.raises(TeacherError, match="single --teacher"):
        teacher_specs_from_cfg(AttrDict(cfg, teacher=None, teachers=str(tmp_path / "map.yaml")), [POMDP])


# ------------------------------------------------------------------------------------------------ the student
def test_student_keys_restrict_the_space():
    assert inputs.student_keys({"student_obs_keys": "obs, task_id"}) == ["obs", "task_id"]
    assert inputs.student_keys({"student_obs_keys": ["obs"]}) == ["obs"]  # a preset's YAML list
    assert inputs.student_keys({}) == []
    assert inputs.restricted_space(STUDENT_SPACE, ["obs"]) == spaces.Dict({"obs": PARTIAL})
    assert inputs.restricted_space(STUDENT_SPACE, []) is STUDENT_SPACE
    assert inputs.model_keys({"student_obs_keys": None}, STUDENT_SPACE) == ["obs", "state"]
    with pytest.raises(inputs.ObsKeysError) as err:
        inputs.restricted_space(STUDENT_SPACE, ["obs", "velocity"], POMDP)
    assert "'velocity'" in str(err.value) and "state: Box(17,)/float64" in str(err.value) and POMDP in str(err.value)


def test_restricted_student_model_has_no_weight_or_statistic_for_the_privileged_key():
    from sample_factory.algo.utils.env_info import EnvInfo

    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args([f"--env={POMDP}", "--experiment=x", "--student_obs_keys=obs", "--use_rnn=True"])
    info = EnvInfo(STUDENT_SPACE, ACTIONS, 1, False, False, [6], False, 1)
    student_info = inputs.student_env_info(cfg, info)
    assert student_info.obs_space == spaces.Dict({"obs": PARTIAL}) and student_info.action_space == ACTIONS
    assert inputs.student_env_info({**vars(cfg), "student_obs_keys": None}, info) is info
    model = create_actor_critic(cfg, student_info.obs_space, ACTIONS)
    assert not any("state" in k for k in model.state_dict()), list(model.state_dict())
    assert list(model.obs_normalizer.running_mean_std.running_mean_std) == ["obs"]
    assert model.encoder.encoders["obs"].mlp_head[0].in_features == 8
    # fed the whole observation (SF's buffers hold every key), it reads "obs" only
    model.eval()
    obs = student_obs()
    h = torch.zeros(5, 2 * cfg.rnn_size if cfg.rnn_type == "lstm" else cfg.rnn_size)
    with torch.no_grad():
        full = model(model.normalize_obs(dict(obs)), h)["action_logits"]
        other = model(model.normalize_obs(dict(obs, state=obs["state"] * 100)), h)["action_logits"]
        alone = model(model.normalize_obs({"obs": obs["obs"]}), h)["action_logits"]
    assert torch.equal(full, other) and torch.equal(full, alone)


# ------------------------------------------------------------------------------------------------ the teacher
def _reference_logits(teacher_dir, state: torch.Tensor) -> torch.Tensor:
    """The teacher's own model on its own observation {"obs": full state}, through SF's forward."""
    teacher = FrozenTeacher(TeacherSpec(path=teacher_dir), spaces.Dict({"obs": FULL}), ACTIONS, fast=False)
    model = teacher.model
    with torch.no_grad():
        return model(model.normalize_obs({"obs": state}), torch.zeros(len(state), teacher.rnn_size))["action_logits"]


@pytest.mark.parametrize("fast", [False, True])
def test_mapped_teacher_reads_the_privileged_key_through_its_own_normaliser(cheetah_teacher, fast):
    spec = TeacherSpec(path=cheetah_teacher, obs_map={"obs": "state"}, obs_keys=["obs"])
    teacher = FrozenTeacher(spec, STUDENT_SPACE, ACTIONS, fast=fast)
    assert teacher.obs_keys == ["obs"] and teacher.input_keys == ["state"] and teacher.mapped
    assert teacher.obs_space == spaces.Dict({"obs": FULL})
    obs = student_obs()
    logits, _ = teacher.forward(obs, torch.zeros(5, teacher.rnn_size))
    assert torch.allclose(logits, _reference_logits(cheetah_teacher, obs["state"]), atol=1e-5)
    # its normaliser's statistics are its checkpoint's, not the identity
    rms = teacher.model.obs_normalizer.running_mean_std.running_mean_std["obs"]
    assert torch.allclose(rms.running_mean.double(), torch.linspace(-2, 2, 17, dtype=torch.float64))
    # it reads "state", never the student's "obs"
    moved, _ = teacher.forward(dict(obs, obs=obs["obs"] + 1), torch.zeros(5, teacher.rnn_size))
    assert torch.equal(moved, logits)


def test_bank_runs_a_mapped_teacher_on_its_own(cheetah_teacher):
    spec = TeacherSpec(path=cheetah_teacher, obs_map={"obs": "state"}, obs_keys=["obs"], tasks=[POMDP])
    bank = TeacherBank([spec], [POMDP], STUDENT_SPACE, ACTIONS)
    assert [type(g) for g in bank.groups] == [SingleTeacher]
    obs = student_obs(7)
    num_logits = 2 * ACTIONS.shape[0]  # SF's action_logits of a Box: the means, then the log-stds
    logits, tidx, _ = bank.forward(obs, torch.zeros(7, bank.rnn_size), num_logits)
    assert tidx.eq(0).all()
    assert torch.allclose(logits[:, :num_logits], _reference_logits(cheetah_teacher, obs["state"]), atol=1e-5)


def test_teacher_keys_through_the_map(cheetah_teacher):
    cfg = {"env": "mujoco_halfcheetah"}
    own = spaces.Dict({"obs": FULL})
    assert inputs.teacher_keys("t", own, cfg, {"obs": "state"}, STUDENT_SPACE, POMDP) == ["obs"]
    # a teacher trained on the pomdp env restricted to the full state reads it by its own name
    assert inputs.teacher_keys("t", STUDENT_SPACE, {"student_obs_keys": "state"}, {}, STUDENT_SPACE, POMDP) == ["state"]


# ------------------------------------------------------------------------------------------------ bad input: exit 2
@pytest.fixture
def train_main(monkeypatch):
    """`python -m sf_kickstart.train`'s main, in process, with the student env probed in process (no spawned
    process): what is checked and the error it gives are the command line's."""
    from sf_kickstart import envprobe
    from sf_kickstart.sf import setup
    from sf_kickstart.train import main

    monkeypatch.setattr(setup, "probe_env_info", envprobe.make_env_info)
    return main


def _student_args(tmp_path, *extra):
    return [f"--env={POMDP}", "--experiment=student", f"--train_dir={tmp_path}", "--device=cpu", *SMALL, *extra]


def _restricted_pomdp_teacher(tmp_path):
    """A teacher trained on the pomdp env with --student_obs_keys=state: it reads "state" only."""
    return make_teacher_dir(str(tmp_path / "state_teacher"), env=POMDP, extra=[*SMALL, "--student_obs_keys=state"],
                            obs_space=spaces.Dict({"state": FULL}), action_space=ACTIONS)


BAD = {  # case: (flags given tmp_path and the cheetah teacher, fragments of the one error line: both sides named)
    "shape_mismatch": (  # a plain-SF teacher's full-state "obs" against the pomdp env's partial "obs", no map
        lambda tmp, t: [f"--teacher={t}"],
        ["observation space does not match", "the teacher's key 'obs' is Box(17,)/float64",
         f"but key 'obs' of the student env '{POMDP}' is Box(8,)/float64", "(e.g. --teacher_obs_map=obs:state)"],
    ),
    "mapped_to_a_missing_key": (
        lambda tmp, t: [f"--teacher={t}", "--teacher_obs_map=obs:full_state"],
        ["observation space does not match", "'obs' Box(17,)/float64 (mapped to 'full_state')",
         f"which the student env '{POMDP}' has not; its keys: {{obs: Box(8,)/float64, state: Box(17,)/float64}}",
         "(e.g. --teacher_obs_map=obs:state)"],
    ),
    "missing_key": (  # a teacher reading "state" against the plain env, which has no "state"
        lambda tmp, t: ["--env=mujoco_halfcheetah", f"--teacher={_restricted_pomdp_teacher(tmp)}"],
        ["observation space does not match", "'state' Box(17,)/float64, which the student env 'mujoco_halfcheetah'",
         "keys: {obs: Box(17,)/float64}"],
    ),
    "map_names_a_key_the_teacher_does_not_read": (
        lambda tmp, t: [f"--teacher={t}", "--teacher_obs_map=velocity:state"],
        ["names ['velocity'], which it does not read", "it reads {obs: Box(17,)/float64}"],
    ),
    "student_restricted_to_a_key_that_does_not_exist": (
        lambda tmp, t: ["--student_obs_keys=obs,velocity"],
        ["--student_obs_keys=obs,velocity", f"'{POMDP}' has no observation key 'velocity'",
         "{obs: Box(8,)/float64, state: Box(17,)/float64}"],
    ),
    "student_restricted_to_a_missing_key_with_a_teacher": (
        lambda tmp, t: [f"--teacher={t}", "--teacher_obs_map=obs:state", "--student_obs_keys=partial"],
        ["has no observation key 'partial'", "state: Box(17,)/float64"],
    ),
    "obs_map_without_teacher": (lambda tmp, t: ["--teacher_obs_map=obs:state"], ["single --teacher"]),
    "obs_map_that_is_not_a_map": (
        lambda tmp, t: [f"--teacher={t}", "--teacher_obs_map=state"], ["is not TEACHER_KEY:ENV_KEY"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_exit_code_2_naming_both_sides(case, tmp_path, cheetah_teacher, train_main, capsys):
    flags, fragments = BAD[case]
    code = train_main(_student_args(tmp_path, *flags(tmp_path, cheetah_teacher)))
    err = capsys.readouterr().err
    assert code == 2, err
    line = [x for x in err.splitlines() if x.startswith("sf_kickstart: error:")]
    assert len(line) == 1, err
    for fragment in fragments:
        assert fragment in line[0], f"{fragment!r} not in {line[0]!r}"


def test_zoo_says_which_envs_a_teacher_reads_by_name_or_through_a_map():
    from sf_kickstart.agents.zoo import obs_map_needed

    cheetah = {"env": "mujoco_halfcheetah"}
    own = spaces.Dict({"obs": FULL})
    assert obs_map_needed("t", cheetah, own, spaces.Dict({"obs": FULL}), "mujoco_halfcheetah") == {}  # by name
    assert obs_map_needed("t", cheetah, own, STUDENT_SPACE, POMDP) == {"obs": "state"}  # only through the map
    restricted = {"env": POMDP, "student_obs_keys": "obs"}  # a pomdp student, as a teacher of another
    assert obs_map_needed("t", restricted, STUDENT_SPACE, STUDENT_SPACE, POMDP) == {}
    assert obs_map_needed("t", cheetah, own, spaces.Dict({"obs": PARTIAL}), POMDP) is None  # nothing it can read
