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
    assert "value" in guard.check(dict(RL=torch.tensor(0.5), value=torch.tensor(NAN)), good)
    assert "kickstart" in guard.check(dict(RL=torch.tensor(0.5), kickstart=torch.tensor(float("inf"))), good)
    assert (guard.skipped, guard.consecutive) == (2, 2)
    assert guard.check(finite, good) is None  # a good minibatch resets the run of skips, not the count
    assert (guard.skipped, guard.consecutive) == (2, 0)
    bad_grad = [("w", _param([1.0, 2.0])), ("encoder.bias", _param([NAN]))]
    assert "'encoder.bias'" in guard.check(finite, bad_grad)
    guard.check(finite, bad_grad)
    with pytest.raises(NonFiniteError, match="3 consecutive minibatches skipped .last: non-finite gradient"):
        guard.check(finite, bad_grad)
    assert guard.skipped == 5
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


def _step(learner, terms) -> bool:
    """One optimizer step through the learner's guarded optimizer, as SF's _train makes it; True if weights moved."""
    before = [p.detach().clone() for p in learner.actor_critic.parameters()]
    for p in learner.actor_critic.parameters():
        p.grad = torch.full_like(p, 0.01)
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


def test_checkpoint_with_nonfinite_weights_or_optimizer_state_is_never_written_nor_rotated_in(learner):
    exp = os.path.join(learner.cfg.train_dir, "unit")
    assert _step(learner, {})  # Adam has state now
    assert learner.save()
    (good,) = checkpoint_paths(exp)
    weight = next(learner.actor_critic.parameters())
    kept = weight.detach().clone()
    with torch.no_grad():
        weight.view(-1)[0] = NAN
    for _ in range(3):  # more refused saves than --keep_checkpoints=1: rotation must not remove the good one
        learner.train_step += 1
        assert learner.save() is False
        assert learner.save_best(0, "reward", 1.0) is False
    assert checkpoint_paths(exp) == [good] and checkpoint_paths(exp, kind="best") == []
    assert first_nonfinite(load_checkpoint(good)["model"]) is None
    with torch.no_grad():
        weight.copy_(kept)
    state = learner.optimizer.state[weight]
    state["exp_avg"].view(-1)[0] = float("inf")
    assert learner.save() is False
    assert checkpoint_paths(exp) == [good]
    state["exp_avg"].zero_()
    learner.train_step += 1
    assert learner.save()
    (newest,) = checkpoint_paths(exp)
    assert newest != good and first_nonfinite(load_checkpoint(newest)["optimizer"]) is None
