"""Kickstarting for continuous and mixed action spaces (issue 21): every `--kickstart_loss` against numbers computed by
hand (numpy, the closed forms written out here), for both of Sample Factory's Gaussian parameterisations, tanh-scaled
means and a mixed Tuple(Discrete, Box) space; the discrete path unchanged; gradients reach the student only; the bad
inputs; value distillation by hand and off by default; the teacher executors on Gaussian heads and teacher values."""

from __future__ import annotations

import glob
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from sample_factory.algo.utils.action_distributions import get_action_distribution
from sample_factory.model.action_parameterization import (
    ActionParameterizationContinuousNonAdaptiveStddev,
    ActionParameterizationDefault,
)
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.errors import UserError
from sf_kickstart.kickstart.loss import (
    CROSS_ENTROPY,
    KICKSTART_LOSSES,
    MSE_MEAN,
    REVERSE_KL,
    KickstartLossError,
    check_loss_fits,
    check_value_coeff,
    kickstart_loss,
    term_summaries,
    value_distillation,
    value_summaries,
)
from sf_kickstart.sf.distillation import action_heads, distribution_logits, policy_term, student_value_targets

N, CORE = 5, 4


# ------------------------------------------------------------------------------------------------ by hand
def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_categorical(div, t, s):
    """Per sample: cross_entropy −Σ p_T log p_S; reverse_kl Σ p_S (log p_S − log p_T)."""
    pt, ps = np_softmax(t), np_softmax(s)
    if div == REVERSE_KL:
        return (ps * (np.log(ps) - np.log(pt))).sum(-1)
    return -(pt * np.log(ps)).sum(-1)


def np_gauss_kl(m1, s1, m2, s2):
    """KL(N(m1, s1²) ‖ N(m2, s2²)) summed over dimensions."""
    return (np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum(-1)


def np_gauss_entropy(s):
    return (0.5 * np.log(2 * math.pi * math.e * s**2)).sum(-1)


def np_gaussian(div, mt, st, ms, ss):
    if div == CROSS_ENTROPY:
        return np_gauss_kl(mt, st, ms, ss) + np_gauss_entropy(st)
    if div == REVERSE_KL:
        return np_gauss_kl(ms, ss, mt, st)
    return ((ms - mt) ** 2).mean(-1)


def np_weighted(per_sample, weights, valids, supervised):
    return (np.where(valids & supervised, weights * per_sample, 0.0)).sum() / max(valids.sum(), 1)


def _np(x):
    return x.detach().double().numpy()


WEIGHTS = torch.tensor([0.5, 0.5, 2.0, 0.0, 0.5])
VALIDS = torch.tensor([True, True, True, True, False])
HAS_TEACHER = torch.tensor([True, True, True, False, True])


def _term(div, space, teacher_logits, student_distribution):
    heads = action_heads(space)
    return policy_term(div, space, heads, teacher_logits, student_distribution, WEIGHTS, VALIDS, HAS_TEACHER)


def _expected(per_sample):
    return np_weighted(per_sample, _np(WEIGHTS), VALIDS.numpy(), HAS_TEACHER.numpy())


def _cfg(**kw):
    return AttrDict({**dict(adaptive_stddev=True, continuous_tanh_scale=0.0, initial_stddev=1.0), **kw})


# ------------------------------------------------------------------------------------------------ Gaussian heads
@pytest.mark.parametrize("div", KICKSTART_LOSSES)
def test_adaptive_stddev_against_hand_computation(div):
    """--adaptive_stddev=True: SF's head gives [μ_1..μ_n, logσ_1..logσ_n]; σ = exp(logσ)."""
    torch.manual_seed(0)
    space = spaces.Box(-1, 1, (3,))
    param = ActionParameterizationDefault(_cfg(), CORE, space)
    x = torch.randn(N, CORE)
    raw, student = param(x)
    teacher_logits = torch.randn(N, 6)
    term = _term(div, space, teacher_logits, student)

    w, b = _np(param.distribution_linear.weight), _np(param.distribution_linear.bias)
    out = _np(x) @ w.T + b  # written out: the linear head
    ms, ss = out[:, :3], np.exp(out[:, 3:])
    t = _np(teacher_logits)
    mt, st = t[:, :3], np.exp(t[:, 3:])
    per_sample = np_gaussian(div, mt, st, ms, ss)
    assert term.loss.item() == pytest.approx(_expected(per_sample), rel=1e-5)
    summ = term_summaries(term)
    sup = (VALIDS & HAS_TEACHER).numpy()
    assert summ["kl_teacher_student"] == pytest.approx(np_gauss_kl(mt, st, ms, ss)[sup].mean(), rel=1e-5)
    assert summ["cross_entropy"] == pytest.approx(np_gaussian(CROSS_ENTROPY, mt, st, ms, ss)[sup].mean(), rel=1e-5)
    assert summ["teacher_entropy"] == pytest.approx(np_gauss_entropy(st)[sup].mean(), rel=1e-5)
    assert summ["mean_squared_error"] == pytest.approx(((ms - mt) ** 2).mean(-1)[sup].mean(), rel=1e-5)
    assert summ["teacher_std"] == pytest.approx(st.mean(-1)[sup].mean(), rel=1e-5)
    assert summ["student_std"] == pytest.approx(ss.mean(-1)[sup].mean(), rel=1e-5)
    assert "action_agreement" not in summ  # a Box-only space has no greedy action to agree on


@pytest.mark.parametrize("tanh_scale", [0.0, 2.0])
@pytest.mark.parametrize("div", KICKSTART_LOSSES)
def test_non_adaptive_stddev_and_tanh_scaled_means_against_hand_computation(div, tanh_scale):
    """--adaptive_stddev=False (the MuJoCo default): means from the head (tanh(z/s)·s with --continuous_tanh_scale=s),
    σ = exp of a learned parameter, the same for every sample."""
    torch.manual_seed(1)
    space = spaces.Box(-1, 1, (2,))
    cfg = _cfg(adaptive_stddev=False, continuous_tanh_scale=tanh_scale, initial_stddev=0.7)
    param = ActionParameterizationContinuousNonAdaptiveStddev(cfg, CORE, space)
    with torch.no_grad():
        param.learned_stddev.copy_(torch.tensor([-0.3, 0.4]))
        param.distribution_linear.weight.mul_(4.0)  # means big enough for the tanh to bend them
    x = torch.randn(N, CORE)
    _, student = param(x)
    teacher_logits = torch.cat([torch.randn(N, 2), torch.full((N, 2), -0.1)], dim=1)
    term = _term(div, space, teacher_logits, student)

    w, b = _np(param.distribution_linear.weight), _np(param.distribution_linear.bias)
    z = _np(x) @ w.T + b
    ms = np.tanh(z / tanh_scale) * tanh_scale if tanh_scale > 0 else z
    ss = np.exp(np.array([[-0.3, 0.4]]).repeat(N, 0))
    t = _np(teacher_logits)
    per_sample = np_gaussian(div, t[:, :2], np.exp(t[:, 2:]), ms, ss)
    assert term.loss.item() == pytest.approx(_expected(per_sample), rel=1e-5)
    if tanh_scale > 0:
        assert np.abs(ms).max() < tanh_scale and not np.allclose(ms, z, atol=1e-2)


@pytest.mark.parametrize("div", KICKSTART_LOSSES)
def test_mixed_tuple_space_sums_its_heads(div):
    """Tuple(Discrete(3), Box(2)): SF lays the logits out [3 logits | 2 means | 2 log-stds]; a categorical head keeps
    its cross-entropy under mse_mean."""
    torch.manual_seed(2)
    space = spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
    param = ActionParameterizationDefault(_cfg(), CORE, space)
    _, student = param(torch.randn(N, CORE))
    s = _np(distribution_logits(student))
    teacher_logits = torch.randn(N, 7)
    t = _np(teacher_logits)
    term = _term(div, space, teacher_logits, student)

    categorical = np_categorical(REVERSE_KL if div == REVERSE_KL else CROSS_ENTROPY, t[:, :3], s[:, :3])
    gaussian = np_gaussian(div, t[:, 3:5], np.exp(t[:, 5:]), s[:, 3:5], np.exp(s[:, 5:]))
    assert term.loss.item() == pytest.approx(_expected(categorical + gaussian), rel=1e-5)
    summ = term_summaries(term)
    sup = (VALIDS & HAS_TEACHER).numpy()
    kl_categorical = np_categorical(REVERSE_KL, s[:, :3], t[:, :3])  # arguments swapped: KL(T‖S)
    kl = kl_categorical + np_gauss_kl(t[:, 3:5], np.exp(t[:, 5:]), s[:, 3:5], np.exp(s[:, 5:]))
    assert summ["kl_teacher_student"] == pytest.approx(kl[sup].mean(), rel=1e-5)  # KL(T‖S), both heads
    agree = (t[:, :3].argmax(-1) == s[:, :3].argmax(-1))[sup].mean()
    assert summ["action_agreement"] == pytest.approx(agree)  # over the categorical head only


def test_distribution_logits_rebuild_sfs_action_logits():
    torch.manual_seed(3)
    for space, cfg in [
        (spaces.Box(-1, 1, (3,)), _cfg()),
        (spaces.Box(-1, 1, (3,)), _cfg(adaptive_stddev=False, continuous_tanh_scale=1.5)),
        (spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,)), spaces.Discrete(2)]), _cfg()),
    ]:
        adaptive = cfg.adaptive_stddev
        cls = ActionParameterizationDefault if adaptive else ActionParameterizationContinuousNonAdaptiveStddev
        raw, dist = cls(cfg, CORE, space)(torch.randn(N, CORE))
        assert torch.equal(distribution_logits(dist), raw)


# ------------------------------------------------------------------------------------------------ discrete unchanged
def _old_formula(student_logits, teacher_logits, weights, valids, splits, has_teacher):
    """The kickstart loss of every earlier version, copied: Σ over heads of −softmax(t)·log_softmax(s), λ-weighted,
    over all valid steps."""
    total = None
    t_parts = torch.split(teacher_logits.detach(), splits, dim=-1) if len(splits) > 1 else (teacher_logits.detach(),)
    s_parts = torch.split(student_logits, splits, dim=-1) if len(splits) > 1 else (student_logits,)
    for t, s in zip(t_parts, s_parts):
        ce = -(torch.nn.functional.softmax(t, dim=-1) * torch.nn.functional.log_softmax(s, dim=-1)).sum(dim=-1)
        total = ce if total is None else total + ce
    weighted = torch.where(valids & has_teacher, weights * total, torch.zeros_like(total))
    return weighted.sum() / valids.sum().clamp_min(1)


@pytest.mark.parametrize("space", [spaces.Discrete(7), spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])])
def test_discrete_path_is_the_old_formula_bit_for_bit(space):
    torch.manual_seed(4)
    splits = [h.size for h in action_heads(space)]
    teacher = torch.randn(N, sum(splits))
    s1 = torch.randn(N, sum(splits), requires_grad=True)
    s2 = s1.detach().clone().requires_grad_(True)
    new = _term(CROSS_ENTROPY, space, teacher, get_action_distribution(space, s1))
    old = _old_formula(s2, teacher, WEIGHTS, VALIDS, splits, HAS_TEACHER)
    assert torch.equal(new.loss, old)
    new.loss.backward()
    old.backward()
    assert torch.equal(s1.grad, s2.grad)
    assert torch.equal(kickstart_loss(s1, teacher, WEIGHTS, VALIDS, splits, HAS_TEACHER).loss, old)
    # reverse KL on categoricals, by hand
    rev = _term(REVERSE_KL, space, teacher, get_action_distribution(space, s1))
    t, s = _np(teacher), _np(s1)
    parts = np.cumsum([0] + splits)
    per_sample = sum(np_categorical(REVERSE_KL, t[:, a:b], s[:, a:b]) for a, b in zip(parts, parts[1:]))
    assert rev.loss.item() == pytest.approx(_expected(per_sample), rel=1e-5)


# ------------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("div", KICKSTART_LOSSES)
@pytest.mark.parametrize("adaptive", [True, False])
def test_gradient_reaches_the_student_only(div, adaptive):
    torch.manual_seed(5)
    space = spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (2,))]) if adaptive else spaces.Box(-1, 1, (2,))
    cls = ActionParameterizationDefault if adaptive else ActionParameterizationContinuousNonAdaptiveStddev
    param = cls(_cfg(adaptive_stddev=adaptive), CORE, space)
    _, student = param(torch.randn(N, CORE))
    width = sum(h.size for h in action_heads(space))
    teacher_logits = torch.randn(N, width, requires_grad=True)
    _term(div, space, teacher_logits, student).loss.backward()
    assert teacher_logits.grad is None
    assert param.distribution_linear.weight.grad.abs().sum() > 0
    if not adaptive and div != MSE_MEAN:  # the learned log-std is trained by the KLs (not by the MSE on the means)
        assert param.learned_stddev.grad.abs().sum() > 0


def test_gaussian_cross_entropy_has_the_gradient_of_the_kl():
    torch.manual_seed(6)
    space = spaces.Box(-1, 1, (3,))
    teacher = torch.randn(N, 6)
    s1 = torch.randn(N, 6, requires_grad=True)
    s2 = s1.detach().clone().requires_grad_(True)
    _term(CROSS_ENTROPY, space, teacher, get_action_distribution(space, s1)).loss.backward()
    kl = torch.distributions.kl_divergence(get_action_distribution(space, teacher), get_action_distribution(space, s2))
    torch.where(VALIDS & HAS_TEACHER, WEIGHTS * kl, torch.zeros_like(kl)).sum().div(VALIDS.sum()).backward()
    assert torch.allclose(s1.grad, s2.grad, atol=1e-6)


# ------------------------------------------------------------------------------------------------ bad input
def test_mse_mean_on_a_discrete_space_is_refused():
    for space in [spaces.Discrete(4), spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])]:
        with pytest.raises(KickstartLossError, match="mse_mean.*continuous") as exc:
            check_loss_fits(MSE_MEAN, action_heads(space), space)
        assert isinstance(exc.value, UserError) and exc.value.exit_code == 2
    for space in [spaces.Box(-1, 1, (2,)), spaces.Tuple([spaces.Discrete(2), spaces.Box(-1, 1, (1,))])]:
        check_loss_fits(MSE_MEAN, action_heads(space), space)
    with pytest.raises(KickstartLossError, match="one of"):
        check_loss_fits("huber", action_heads(spaces.Discrete(2)), spaces.Discrete(2))


@pytest.mark.parametrize("coeff", [-0.1, float("nan"), float("inf")])
def test_impossible_value_coeff_is_refused(coeff):
    with pytest.raises(KickstartLossError, match="kickstart_value_coeff"):
        check_value_coeff(coeff)


def test_build_layout_refuses_mse_mean_on_a_discrete_student_before_any_teacher_is_read(tmp_path):
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf import setup
    from tests.e2e_utils import make_teacher_dir

    teacher = make_teacher_dir(str(tmp_path / "teacher"))
    cfg, suite = setup.parse_args([
        "--env=minigrid_DoorKey-5x5", "--experiment=x", f"--train_dir={tmp_path}", f"--teacher={teacher}",
        "--kickstart_loss=mse_mean", "--device=cpu",
    ])
    with pytest.raises(KickstartLossError, match="mse_mean"):
        setup.build_layout(cfg, suite, make_env_info(cfg))


def test_unknown_kickstart_loss_is_an_argparse_error():
    from sf_kickstart.sf import setup

    with pytest.raises(SystemExit) as exc:
        setup.parse_args(["--env=minigrid_DoorKey-5x5", "--experiment=x", "--kickstart_loss=huber"])
    assert exc.value.code == 2


# ------------------------------------------------------------------------------------------------ value distillation
def test_value_distillation_against_hand_computation():
    v_s = torch.tensor([1.0, -2.0, 0.5, 3.0, 7.0], requires_grad=True)
    v_t = torch.tensor([0.0, -1.0, 2.5, 1.0, 0.0])
    coeff = 0.25
    term = value_distillation(v_s, v_t, coeff * WEIGHTS, VALIDS, HAS_TEACHER)
    sq = (np.array([1.0, -2.0, 0.5, 3.0, 7.0]) - np.array([0.0, -1.0, 2.5, 1.0, 0.0])) ** 2
    # steps 0-2 valid and supervised, step 3 has no teacher, step 4 invalid: 4 valid steps
    expected = coeff * (0.5 * sq[0] + 0.5 * sq[1] + 2.0 * sq[2]) / 4
    assert term.loss.item() == pytest.approx(expected, rel=1e-6)
    summ = value_summaries(term)
    assert summ["value_loss"] == pytest.approx(expected, rel=1e-6)
    assert summ["value_mse"] == pytest.approx(sq[:3].mean(), rel=1e-6)
    term.loss.backward()
    assert v_s.grad[3] == 0 and v_s.grad[4] == 0 and v_s.grad[2] != 0


def test_value_targets_in_the_students_critic_units_leave_its_statistics_alone():
    from sample_factory.algo.utils.running_mean_std import RunningMeanStdInPlace

    values = torch.tensor([10.0, -4.0, 300.0])
    assert torch.equal(student_value_targets(values, None), values)
    rms = torch.jit.script(RunningMeanStdInPlace((1,)))  # as SF's ActorCritic holds it, in training mode
    with torch.no_grad():
        rms.running_mean.fill_(2.0)
        rms.running_var.fill_(16.0)
    before = {k: v.clone() for k, v in rms.state_dict().items()}
    targets = student_value_targets(values, rms)
    expected = np.clip((np.array([10.0, -4.0, 300.0]) - 2.0) / np.sqrt(16.0 + 1e-5), -5.0, 5.0)
    assert np.allclose(targets.numpy(), expected, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in rms.state_dict().items()) and rms.training


def test_value_distillation_is_off_by_default():
    from sf_kickstart.sf import setup
    from sf_kickstart.sf.storage import KickstartLayout

    cfg, _ = setup.parse_args(["--env=minigrid_DoorKey-5x5", "--experiment=x"])
    assert cfg.kickstart_value_coeff == 0 and cfg.kickstart_loss == CROSS_ENTROPY
    layout = KickstartLayout(1, 1, 7)
    assert not layout.teacher_values and list(layout.teacher_outputs) == ["teacher_logits", "teacher_idx"]
    on = KickstartLayout(1, 1, 7, value_coeff=0.5)
    assert list(on.teacher_outputs) == ["teacher_logits", "teacher_idx", "teacher_values"]


# ------------------------------------------------------------------------------------------------ teacher executors
GYM_OBS = spaces.Dict({"obs": spaces.Box(-np.inf, np.inf, (3,), np.float32)})
GYM_ACT = spaces.Box(-2, 2, (1,), np.float32)


def _gaussian_teacher(path, adaptive: bool, rnn: bool = False):
    from tests.e2e_utils import make_teacher_dir

    extra = [f"--adaptive_stddev={adaptive}", "--normalize_returns=True", "--normalize_input=True",
             f"--use_rnn={rnn}", "--encoder_mlp_layers", "16", "16"]
    if not adaptive:
        extra.append("--continuous_tanh_scale=2")
    path = make_teacher_dir(path, env="Pendulum-v1", extra=extra, obs_space=GYM_OBS, action_space=GYM_ACT)
    ckpt_path = glob.glob(f"{path}/checkpoint_p0/*.pth")[0]
    ckpt = torch.load(ckpt_path, weights_only=False)
    for k, v in ckpt["model"].items():  # non-trivial normaliser statistics, a returns normaliser to undo
        if "running_mean" in k:
            v.fill_(0.3)
        elif "running_var" in k:
            v.fill_(4.0)
    torch.save(ckpt, ckpt_path)
    return path


@pytest.mark.parametrize("adaptive", [True, False])
@pytest.mark.parametrize("cpu_kernel", [True, False])
def test_teacher_bank_on_gaussian_heads_and_values_is_each_teachers_own_forward(tmp_path, adaptive, cpu_kernel):
    """State-dependent Gaussian heads (a linear layer, like a categorical's) run on the stacked executors, exactly;
    the learned-log-std parameterisation is not in their family and runs as a single teacher. With values the
    critic's output is the last column, in return units."""
    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs

    from sf_kickstart.teachers import TeacherBank, TeacherSpec

    path = _gaussian_teacher(str(tmp_path / "t"), adaptive, rnn=adaptive)
    for values in (False, True):
        bank = TeacherBank([TeacherSpec(path=path, tasks=["Pendulum-v1"])], ["Pendulum-v1"], GYM_OBS, GYM_ACT,
                           cpu_kernel=cpu_kernel, values=values)
        kinds = {type(g).__name__ for g in bank.groups}
        assert kinds == ({"KernelExecutor" if cpu_kernel else "StackedTeachers"} if adaptive else {"SingleTeacher"})
        torch.manual_seed(7)
        obs = {"obs": torch.randn(9, 3) * 3}
        h = torch.rand(9, bank.rnn_size)
        out, tidx, new_h = bank.forward(obs, h, 2)
        assert out.shape == (9, 2 + values) and tidx.eq(0).all()
        model = bank.teachers[0].model
        with torch.no_grad():  # SF's own full forward of the teacher's model
            ref = model(prepare_and_normalize_obs(model, dict(obs)), h)
        assert torch.allclose(out[:, :2], ref["action_logits"], atol=1e-5)
        if adaptive:
            assert torch.allclose(new_h, ref["new_rnn_states"], atol=1e-5)
        if values:
            raw = ref["values"].reshape(-1).double().numpy()
            by_hand = np.clip(raw, -5, 5) * np.sqrt(4.0 + 1e-5) + 0.3  # SF's denormalisation, written out
            assert np.allclose(out[:, 2].numpy(), by_hand, atol=1e-4)


@pytest.mark.parametrize("cpu_kernel", [True, False])
def test_per_task_teachers_each_give_their_own_value(tmp_path, cpu_kernel):
    """Per-task teachers (one stacked group, routed by task id; one with another architecture; a task without a
    teacher): every row's value is its own teacher's critic in its own return units, 0 where no teacher."""
    from sample_factory.algo.utils.rl_utils import prepare_and_normalize_obs

    from sf_kickstart.suites import minigrid
    from sf_kickstart.teachers import TeacherBank, TeacherSpec
    from tests.e2e_utils import make_teacher_dir

    torch.manual_seed(8)
    dirs = []
    for i, rnn in enumerate([32, 32, 48]):
        d = make_teacher_dir(str(tmp_path / f"t{i}"), rnn_size=rnn, extra=["--normalize_returns=True"])
        path = glob.glob(f"{d}/checkpoint_p0/*.pth")[0]
        ckpt = torch.load(path, weights_only=False)
        ckpt["model"]["returns_normalizer.running_mean"].fill_(10.0 * i - 3)  # a different return scale each
        ckpt["model"]["returns_normalizer.running_var"].fill_(1.0 + 3 * i)
        torch.save(ckpt, path)
        dirs.append(d)
    tasks = minigrid.task_names("minigrid_suite")
    specs = [TeacherSpec(path=dirs[0], tasks=tasks[0:3]), TeacherSpec(path=dirs[1], tasks=tasks[3:6]),
             TeacherSpec(path=dirs[2], tasks=tasks[6:8])]  # task 8 has no teacher
    bank = TeacherBank(specs, tasks, minigrid.observation_space(), spaces.Discrete(7), cpu_kernel=cpu_kernel,
                       values=True)
    n = 18
    gen = torch.Generator().manual_seed(9)
    task_ids = torch.arange(n) % 9
    obs = {"obs": torch.randint(0, 2, (n, 984), dtype=torch.uint8, generator=gen), "task_id": torch.eye(9)[task_ids]}
    h = torch.rand(n, bank.rnn_size, generator=gen)
    out, tidx, _ = bank.forward(obs, h, 7)
    owners = [0, 0, 0, 1, 1, 1, 2, 2, -1]
    for r in range(n):
        owner = owners[int(task_ids[r])]
        assert int(tidx[r]) == owner
        if owner < 0:
            assert not out[r].any()
            continue
        t = bank.teachers[owner]
        sub = {k: v[r : r + 1] for k, v in obs.items()}
        with torch.no_grad():
            ref = t.model(prepare_and_normalize_obs(t.model, dict(sub)), h[r : r + 1, : t.rnn_size])
        raw = float(ref["values"].reshape(-1)[0])
        by_hand = min(max(raw, -5.0), 5.0) * math.sqrt(1.0 + 3 * owner + 1e-5) + 10.0 * owner - 3
        assert torch.allclose(out[r, :7], ref["action_logits"][0], atol=1e-5)
        assert float(out[r, 7]) == pytest.approx(by_hand, abs=1e-4)
