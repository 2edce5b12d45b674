"""Fixes of Sample Factory 2.1.1's `Learner`, for every run through sf_kickstart.train (teacher or not): `FixedLearner`.

  * V-trace summaries: `--with_vtrace=True` crashed at the first summary (`mb.advantages` does not exist under
    V-trace); the V-trace advantages are summarised instead.
  * unloadable checkpoint: a checkpoint that failed to load (e.g. torch>=2.6's `weights_only` default on a checkpoint
    holding numpy scalars) was logged and training silently restarted from random weights; it is loaded with the
    project's safe loader (`checkpoints.load_checkpoint`: weights_only=True and an allowlist of numpy scalars,
    `--trust_checkpoint` for anything else) and a checkpoint that still fails to load is an error.
  * non-finite minibatch: a minibatch whose loss or gradient is not finite is skipped instead of stepping the optimizer
    into NaN weights (`--max_nonfinite_skips` in a row stop the run, naming the last good checkpoint;
    `fixes.nonfinite`). A skip is summarised at the next train step, not at SF's next timed summary (2 s and more
    apart), so `train/nonfinite_skipped` shows it even when the run stops soon after.
  * non-finite checkpoint: a checkpoint whose weights or optimizer state are not finite is never written (and a
    refused best checkpoint does not raise `best_performance`, which SF raises before writing).
  * `--lr_schedule=linear_decay`: SF's scheduler is refused by its CLI, restarts on resume and ignores frameskip and
    PBT; `fixes.lr_schedule.FrameLinearDecay` decays by the learner's frame count instead.
  * PBT exploit: SF applies the new (mutated) cfg first and then loads the source member's checkpoint, whose curr_lr
    overwrites the freshly mutated learning rate; it is re-applied.

May import: Sample Factory, the ground floor (`checkpoints`, `experiments`, `tags`), `fixes.nonfinite`, `fixes.lr_schedule`. Nothing
kickstart-specific.
"""

from __future__ import annotations

import functools
from typing import Dict

import torch

from sample_factory.algo.learning.learner import Learner
from sample_factory.utils.utils import experiment_dir, log

from sf_kickstart import tags
from sf_kickstart.checkpoints import load_checkpoint
from sf_kickstart.experiments import latest_checkpoint
from sf_kickstart.sf.fixes.lr_schedule import LINEAR_DECAY, FrameLinearDecay, uses_scheduler
from sf_kickstart.sf.fixes.nonfinite import NonFiniteError, SkipGuard, first_nonfinite

REFUSE_RANDOM_WEIGHTS = (
    ". Refusing to train from random weights: remove or fix the file, or use a new --experiment."
)


class FixedLearner(Learner):
    """SF's Learner with the defects above fixed. Subclasses add their loss terms to `loss_terms` (by name) in
    `_calculate_losses`: every term is checked for finiteness before the optimizer steps."""

    def __init__(self, cfg, env_info, policy_versions_tensor, policy_id, param_server):
        super().__init__(cfg, env_info, policy_versions_tensor, policy_id, param_server)
        self.nonfinite = SkipGuard(int(getattr(cfg, "max_nonfinite_skips", 10)))
        self.loss_terms: Dict[str, torch.Tensor] = {}  # the current minibatch's loss terms by name (RL, value, ...)
        self.skips_summarised = 0  # nonfinite.skipped as of the last summary
        # SF's load_from_checkpoint calls self.load_checkpoint(checkpoints, device): this run's --trust_checkpoint
        trust = getattr(cfg, "trust_checkpoint", None)
        self.load_checkpoint = functools.partial(FixedLearner.load_checkpoint, trust=trust)

    def init(self):
        """SF's Learner._train steps the optimizer inside its loop; its step is the one place that sees every
        minibatch's gradients after clipping and before the weights change, so the skip decision wraps it."""
        init_model_data = super().init()
        if uses_scheduler(self.cfg):  # SF's linear decay restarts on resume; the KL brake (`fixes.lr_schedule`)
            self.lr_scheduler = FrameLinearDecay(self, self.cfg.lr_schedule == LINEAR_DECAY, bool(self.cfg.lr_kl_brake))
            self.curr_lr = self.lr_scheduler.current()
            self._apply_lr(self.curr_lr)
        step = self.optimizer.step

        def step_if_finite(*args, **kwargs):
            skip = self._skip_minibatch()
            self.loss_terms = {}  # checked once; do not keep the minibatch's graph alive
            return None if skip else step(*args, **kwargs)

        self.optimizer.step = step_if_finite
        return init_model_data

    def _calculate_losses(self, mb, num_invalids):
        out = super()._calculate_losses(mb, num_invalids)
        _, policy_loss, exploration_loss, _, kl_loss, value_loss, _ = out
        self.loss_terms = dict(RL=policy_loss + exploration_loss + kl_loss, value=value_loss)
        return out

    def _skip_minibatch(self) -> bool:
        try:
            reason = self.nonfinite.check(self.loss_terms, list(self.actor_critic.named_parameters()))
        except NonFiniteError as exc:
            last = latest_checkpoint(experiment_dir(cfg=self.cfg), self.policy_id)
            raise NonFiniteError(
                f"{exc}: stopping the run (--max_nonfinite_skips={self.nonfinite.max_consecutive}). The last good "
                f"checkpoint is {last or 'none (no checkpoint was written)'}"
            ) from None
        if reason is not None:
            log.warning(
                f"Skipped a minibatch at train step {self.train_step}: {reason}; no optimizer step "
                f"({self.nonfinite.skipped} skipped in all, {self.nonfinite.consecutive} in a row)"
            )
        return reason is not None

    def _should_save_summaries(self):
        return super()._should_save_summaries() or self.nonfinite.skipped != self.skips_summarised

    def _record_summaries(self, train_loop_vars):
        var = train_loop_vars
        if self.cfg.with_vtrace and "advantages" not in var.mb:
            var.mb["advantages"] = var.adv  # SF 2.1.1 crashes here under V-trace; summarise the V-trace advantages
        stats = super()._record_summaries(train_loop_vars)
        stats[tags.train_key(tags.NONFINITE_SKIPPED)] = self.skips_summarised = self.nonfinite.skipped
        return stats

    def _save_impl(self, name_prefix, name_suffix, keep_checkpoints, verbose=True) -> bool:
        """Periodic, best and final checkpoints come here (milestones: `save_milestone`): one whose weights or
        optimizer state are not all finite is refused (logged; the previous checkpoints stay). SF's rotation runs
        only after a successful write, so the newest checkpoint on disk is always a finite one and rotation never
        removes the last good checkpoint in favour of a bad one."""
        if self.is_initialized and self._state_is_nonfinite("periodic" if name_prefix == "checkpoint" else name_prefix):
            return False
        return super()._save_impl(name_prefix, name_suffix, keep_checkpoints, verbose)

    def save_milestone(self):
        if not self._state_is_nonfinite("milestone"):
            super().save_milestone()

    def save_best(self, policy_id, metric, metric_value) -> bool:
        """SF raises `best_performance` before it writes: after a refused (non-finite) best save it would claim a best
        checkpoint that was never written and hold back the next finite one at that score. It is put back."""
        previous = self.best_performance
        saved = super().save_best(policy_id, metric, metric_value)
        if not saved:
            self.best_performance = previous
        return saved

    def _state_is_nonfinite(self, kind: str) -> bool:
        bad = first_nonfinite(dict(model=self.actor_critic.state_dict(), optimizer=self.optimizer.state_dict()))
        if bad is not None:
            last = latest_checkpoint(experiment_dir(cfg=self.cfg), self.policy_id)
            log.error(
                f"Not writing a {kind} checkpoint at train step {self.train_step}: {bad} is not finite; the last good "
                f"checkpoint, {last or 'none'}, is kept"
            )
        return bad is not None

    @staticmethod
    def load_checkpoint(checkpoints, device, trust=None):
        """SF's Learner.load_checkpoint through the safe loader; `trust`: a --trust_checkpoint value."""
        if len(checkpoints) <= 0:
            log.warning("No checkpoints found")
            return None
        log.warning("Loading state from checkpoint %s...", checkpoints[-1])
        return load_checkpoint(checkpoints[-1], device, hint=REFUSE_RANDOM_WEIGHTS, trust=trust)

    @classmethod
    def trusting(cls, trust):
        """This class with `load_checkpoint` bound to a --trust_checkpoint value (SF's enjoy calls it on the class)."""
        bound = functools.partial(FixedLearner.load_checkpoint, trust=trust)
        return type(cls.__name__, (cls,), dict(load_checkpoint=staticmethod(bound)))

    def _maybe_load_policy(self) -> None:
        """PBT exploit: the mutated learning rate survives loading the source member's checkpoint."""
        if self.policy_to_load is None:
            return super()._maybe_load_policy()
        mutated_lr = self.cfg.learning_rate
        super()._maybe_load_policy()
        if self.cfg.lr_schedule == "constant":
            self.curr_lr = mutated_lr
            self._apply_lr(self.curr_lr)
