"""Non-finite numbers: the skip decision (SkipGuard), the learner's optimizer step that uses it, and checkpoints that
are never written with non-finite weights or optimizer state (a real FixedLearner, in-process, CPU)."""

from __future__ import annotations

import os

import pytest
import torch

from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.experiments import checkpoint_paths
from sf_kickstart.sf.fixes.nonfinite import NonFiniteError, SkipGuard, first_nonfinite

NAN = float("nan")


def test_first_nonfinite_names_the_first_bad_tensor_in_nested_state():
    state = dict(model={"a.weight": torch.ones(2), "b.bias": torch.tensor([1.0, float("inf")])},
                 optimizer={"state": {0: {"step": torch.tensor(3), "exp_avg": torch.tensor([NAN])}}})
    assert first_nonfinite(state) == "model.b.bias"
    state["model"]["b.bias"] = torch.zeros(2)
    assert first_nonfinite(state) == "optimizer.state.0.exp_avg"
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(1)
    assert first_nonfinite(state) is None
    assert first_nonfinite({"ints": torch.arange(3)}) is None


def _param(grad):
    p = torch.nn.Parameter(torch.zeros(len(grad)))
    p.grad = torch.tensor(grad)
    return p


def test_skip_guard_names_the_term_or_gradient_and_stops_after_k_in_a_row():
    guard = SkipGuard(max_consecutive=3)
    good = [("w", _param([1.0, 2.0]))]
    finite = dict(RL=torch.tensor(0.5), value=torch.tensor(1.0))
    assert guard.check(finite, good) is None
    assert guard.check(dict(RL=torch.tensor(NAN), value=torch.tensor(1.0)), good) == "non-finite RL loss term"
    assert guard.check(finite, good) is None
    assert "value" in guard.check(dict(RL=torch.tensor(0.5), value=torch.tensor(NAN)), good)
    assert "kickstart" in guard.check(dict(RL=torch.tensor(0.5), kickstart=torch.tensor(float("inf"))), good)
    assert (guard.skipped, guard.consecutive) == (3, 2)
    assert guard.check(finite, good) is None  # a good minibatch resets the run of skips, not the count
    assert (guard.skipped, guard.consecutive) == (3, 0)
    bad_grad = [("w", _param([1.0, 2.0])), ("encoder.bias", _param([NAN]))]
    assert "'encoder.bias'" in guard.check(finite, bad_grad)
    guard.check(finite, bad_grad)
    with pytest.raises(NonFiniteError, match="3 consecutive minibatches skipped .last: non-finite gradient"):
        guard.check(finite, bad_grad)
    assert guard.skipped == 6
    with pytest.raises(ValueError):
        SkipGuard(0)


@pytest.fixture()
def learner(tmp_path):
    from sample_factory.algo.utils.model_sharing import ParameterServer
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.sf.fixes.learner import FixedLearner
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args(["--env=minigrid_DoorKey-5x5", "--experiment=unit", f"--train_dir={tmp_path}", "--device=cpu",
                         "--encoder_mlp_layers", "16", "--keep_checkpoints=1", "--max_nonfinite_skips=2"])
    cfg = AttrDict(vars(cfg))
    versions = torch.zeros([1], dtype=torch.int32)
    learner = FixedLearner(cfg, make_env_info(cfg), versions, 0, ParameterServer(0, versions, False))
    learner.init()
    return learner


@pytest.fixture()
def rl_log(caplog):
    """Records of Sample Factory's "rl" logger, which FixedLearner logs to (it does not propagate to the root logger,
    where caplog listens)."""
    from sample_factory.utils.utils import log

    log.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        log.removeHandler(caplog.handler)


def _step(learner, terms, bad_grad: str = None) -> bool:
    """One optimizer step through the learner's guarded optimizer, as SF's _train makes it; True if weights moved.
    `bad_grad`: the name of a parameter whose gradient is NaN."""
    before = [p.detach().clone() for p in learner.actor_critic.parameters()]
    for name, p in learner.actor_critic.named_parameters():
        p.grad = torch.full_like(p, NAN if name == bad_grad else 0.01)
    learner.loss_terms = terms
    learner.optimizer.step()
    learner.train_step += 1
    return any(not torch.equal(a, p) for a, p in zip(before, learner.actor_critic.parameters()))


def test_learner_skips_the_optimizer_step_of_a_nonfinite_minibatch_and_stops_after_k(learner):
    ok = dict(RL=torch.tensor(0.1), value=torch.tensor(0.2))
    assert _step(learner, ok)
    assert learner.save()
    assert not _step(learner, dict(RL=torch.tensor(0.1), value=torch.tensor(NAN)))
    assert learner.nonfinite.skipped == 1
    assert _step(learner, ok)
    assert not _step(learner, dict(ok, kickstart=torch.tensor(NAN)))
    with pytest.raises(NonFiniteError, match=r"The last good checkpoint is .*checkpoint_000000001_0\.pth"):
        _step(learner, dict(ok, kickstart=torch.tensor(NAN)))
    assert first_nonfinite(learner.actor_critic.state_dict()) is None


def test_a_skip_is_summarised_at_the_next_train_step_not_at_sfs_next_timed_summary(learner):
    import time

    ok = dict(RL=torch.tensor(0.1), value=torch.tensor(0.2))
    learner.last_summary_time = time.time()  # SF's timer: the next summary is seconds away
    assert _step(learner, ok) and not learner._should_save_summaries()
    assert not _step(learner, dict(ok, value=torch.tensor(NAN)))
    assert learner._should_save_summaries()  # the skip is reported at once
    learner.skips_summarised = learner.nonfinite.skipped  # as _record_summaries sets it
    assert not learner._should_save_summaries()


def test_learner_skips_and_names_a_nonfinite_rl_term_and_a_nonfinite_gradient(learner, rl_log):
    ok = dict(RL=torch.tensor(0.1), value=torch.tensor(0.2))
    assert _step(learner, ok)
    step = learner.train_step
    assert not _step(learner, dict(ok, RL=torch.tensor(NAN)))
    assert _step(learner, ok)  # a good minibatch in between: neither skip counts towards --max_nonfinite_skips=2
    name = [n for n, _ in learner.actor_critic.named_parameters()][-1]
    assert not _step(learner, ok, bad_grad=name)
    assert learner.nonfinite.skipped == 2
    skips = [r.getMessage() for r in rl_log.records if r.getMessage().startswith("Skipped a minibatch")]
    assert skips == [
        f"Skipped a minibatch at train step {step}: non-finite RL loss term; no optimizer step "
        f"(1 skipped in all, 1 in a row)",
        f"Skipped a minibatch at train step {step + 2}: non-finite gradient (first: {name!r}; loss terms finite); "
        f"no optimizer step (2 skipped in all, 1 in a row)",
    ]
    assert first_nonfinite(learner.actor_critic.state_dict()) is None


REFUSAL = (r"Not writing a (\w+) checkpoint at train step (\d+): (\S+) is not finite; the last good checkpoint, (\S+), "
           r"is kept")


def _refusals(rl_log):
    """(kind, tensor, last good checkpoint) of each refused save logged, in order (ERROR records only)."""
    import re

    found = [(r.levelname, re.fullmatch(REFUSAL, r.getMessage())) for r in rl_log.records]
    return [(m.group(1), m.group(3), m.group(4)) for level, m in found if m and level == "ERROR"]


def test_checkpoint_with_nonfinite_weights_or_optimizer_state_is_never_written_nor_rotated_in(learner, rl_log):
    exp = os.path.join(learner.cfg.train_dir, "unit")
    assert _step(learner, {})  # Adam has state now
    assert learner.save()
    (good,) = checkpoint_paths(exp)
    weight_name, weight = next(learner.actor_critic.named_parameters())
    kept = weight.detach().clone()
    best_before = learner.best_performance
    with torch.no_grad():
        weight.view(-1)[0] = NAN
    for _ in range(3):  # more refused saves than --keep_checkpoints=1: rotation must not remove the good one
        learner.train_step += 1
        assert learner.save() is False
        assert learner.save_best(0, "reward", 1.0) is False
    assert checkpoint_paths(exp) == [good] and checkpoint_paths(exp, kind="best") == []
    assert learner.best_performance == best_before  # a refused best save is not a new best (SF raised it anyway)
    assert first_nonfinite(load_checkpoint(good)["model"]) is None
    with torch.no_grad():
        weight.copy_(kept)
    state = learner.optimizer.state[weight]
    state["exp_avg"].view(-1)[0] = float("inf")
    assert learner.save() is False
    assert checkpoint_paths(exp) == [good]
    bad_weight, bad_state = f"model.{weight_name}", "optimizer.state.0.exp_avg"
    assert _refusals(rl_log) == [("periodic", bad_weight, good), ("best", bad_weight, good)] * 3 + [
        ("periodic", bad_state, good)]
    state["exp_avg"].zero_()
    learner.train_step += 1
    assert learner.save()
    (newest,) = checkpoint_paths(exp)
    assert newest != good and first_nonfinite(load_checkpoint(newest)["optimizer"]) is None
    assert learner.save_best(0, "reward", 1.0)  # the score whose saves were refused: written now that it is finite
    (best,) = checkpoint_paths(exp, kind="best")
    assert first_nonfinite(load_checkpoint(best)["model"]) is None


def test_milestone_with_nonfinite_weights_is_refused_written_nowhere_and_logged(learner, rl_log):
    milestones = os.path.join(learner.cfg.train_dir, "unit", "checkpoint_p0", "milestones")
    assert _step(learner, {})
    assert learner.save()
    (good,) = checkpoint_paths(os.path.join(learner.cfg.train_dir, "unit"))
    weight_name, weight = next(learner.actor_critic.named_parameters())
    kept = weight.detach().clone()
    with torch.no_grad():
        weight.view(-1)[0] = NAN
    learner.train_step += 1
    learner.save_milestone()
    assert not os.path.exists(milestones) or os.listdir(milestones) == [], os.listdir(milestones)
    assert _refusals(rl_log) == [("milestone", f"model.{weight_name}", good)]
    assert f"Not writing a milestone checkpoint at train step {learner.train_step}: " in rl_log.text
    with torch.no_grad():
        weight.copy_(kept)
    learner.save_milestone()  # finite again: the milestone is written (so the refusal above was the guard's doing)
    (written,) = os.listdir(milestones)
    assert first_nonfinite(load_checkpoint(os.path.join(milestones, written))["model"]) is None
