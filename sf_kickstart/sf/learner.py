"""Sample Factory's Learner plus the kickstart term, its summaries and its checkpointed kickstart weights.

`FixedLearner` fixes two SF 2.1.1 learner defects for every run that goes through sf_kickstart.train (teacher or not);
`KickstartLearner` adds kickstarting on top of it:
  * `--with_vtrace=True` crashed at the first summary (`mb.advantages` does not exist under V-trace): we summarise
    the V-trace advantages instead;
  * a checkpoint that fails to load (e.g. torch>=2.6 `weights_only` default on a checkpoint holding numpy scalars)
    was logged and training silently restarted from random weights: we load with `weights_only=False` and a
    checkpoint that still fails to load is an error.
It also skips a minibatch whose loss or gradient is not finite instead of stepping the optimizer into NaN weights
(`--max_nonfinite_skips` in a row stop the run, naming the last good checkpoint), and never writes a checkpoint whose
weights or optimizer state are not finite.
"""

from __future__ import annotations

import copy
import math
from typing import Dict, Optional

import torch

from sample_factory.algo.learning.learner import Learner
from sample_factory.utils.utils import experiment_dir, log

from sf_kickstart import tags
from sf_kickstart.experiments import latest_checkpoint, load_checkpoint
from sf_kickstart.sf.nonfinite import NonFiniteError, SkipGuard, first_nonfinite
from sf_kickstart.kickstart.loss import kickstart_loss, logit_splits, masked_mean, term_summaries
from sf_kickstart.kickstart.weights import CHECKPOINT_KEY, HYPERPARAMETERS, KickstartWeights


REFUSE_RANDOM_WEIGHTS = (
    ". Refusing to train from random weights: remove or fix the file, or use a new --experiment."
)


def distribution_logits(action_distribution) -> torch.Tensor:
    """Raw logits of SF's categorical / tuple-of-categorical action distributions, concatenated like action_logits."""
    if hasattr(action_distribution, "raw_logits"):
        return action_distribution.raw_logits
    if hasattr(action_distribution, "distributions"):
        return torch.cat([distribution_logits(d) for d in action_distribution.distributions], dim=-1)
    raise TypeError(f"Kickstarting needs a categorical policy, got {type(action_distribution).__name__}")


class FixedLearner(Learner):
    """SF's Learner with the two defects above fixed, and non-finite minibatches skipped."""

    def __init__(self, cfg, env_info, policy_versions_tensor, policy_id, param_server):
        super().__init__(cfg, env_info, policy_versions_tensor, policy_id, param_server)
        self.nonfinite = SkipGuard(int(getattr(cfg, "max_nonfinite_skips", 10)))
        self._loss_terms: Dict[str, torch.Tensor] = {}  # the current minibatch's loss terms by name (RL, value, ...)

    def init(self):
        """SF's Learner._train steps the optimizer inside its loop; its step is the one place that sees every
        minibatch's gradients after clipping and before the weights change, so the skip decision wraps it."""
        init_model_data = super().init()
        step = self.optimizer.step

        def step_if_finite(*args, **kwargs):
            skip = self._skip_minibatch()
            self._loss_terms = {}  # checked once; do not keep the minibatch's graph alive
            return None if skip else step(*args, **kwargs)

        self.optimizer.step = step_if_finite
        return init_model_data

    def _calculate_losses(self, mb, num_invalids):
        out = super()._calculate_losses(mb, num_invalids)
        _, policy_loss, exploration_loss, _, kl_loss, value_loss, _ = out
        self._loss_terms = dict(RL=policy_loss + exploration_loss + kl_loss, value=value_loss)
        return out

    def _skip_minibatch(self) -> bool:
        try:
            reason = self.nonfinite.check(self._loss_terms, list(self.actor_critic.named_parameters()))
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

    def _record_summaries(self, train_loop_vars):
        var = train_loop_vars
        if self.cfg.with_vtrace and "advantages" not in var.mb:
            var.mb["advantages"] = var.adv  # SF 2.1.1 crashes here under V-trace; summarise the V-trace advantages
        stats = super()._record_summaries(train_loop_vars)
        stats[tags.train_key(tags.NONFINITE_SKIPPED)] = self.nonfinite.skipped
        return stats

    def _save_impl(self, name_prefix, name_suffix, keep_checkpoints, verbose=True) -> bool:
        """Periodic, best and final checkpoints come here (milestones: `save_milestone`): one whose weights or
        optimizer state are not all finite is refused (logged; the previous checkpoints stay). SF's rotation runs
        only after a successful write, so the newest checkpoint on disk is always a finite one and rotation never
        removes the last good checkpoint in favour of a bad one."""
        if self.is_initialized and self._state_is_nonfinite(name_prefix):
            return False
        return super()._save_impl(name_prefix, name_suffix, keep_checkpoints, verbose)

    def save_milestone(self):
        if not self._state_is_nonfinite("milestone"):
            super().save_milestone()

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
    def load_checkpoint(checkpoints, device):
        if len(checkpoints) <= 0:
            log.warning("No checkpoints found")
            return None
        log.warning("Loading state from checkpoint %s...", checkpoints[-1])
        return load_checkpoint(checkpoints[-1], device, hint=REFUSE_RANDOM_WEIGHTS)


class KickstartLearner(FixedLearner):
    def __init__(self, cfg, env_info, policy_versions_tensor, policy_id, param_server, layout=None):
        super().__init__(cfg, env_info, policy_versions_tensor, policy_id, param_server)
        self.layout = layout
        self.weights = (
            KickstartWeights.from_cfg(cfg, layout.specs, layout.teacher_scores) if layout is not None else None
        )
        self.splits = logit_splits(env_info.action_space) if layout is not None else None
        self._ks_pending: Optional[Dict[str, float]] = None
        # --kickstart_debug_dump=K: save the first K training batches' kickstart inputs (diagnostics and tests)
        self._dumps_left = int(getattr(cfg, "kickstart_debug_dump", 0)) if layout is not None else 0
        self._dump_raw: Optional[Dict] = None

    @property
    def enabled(self) -> bool:
        return self.layout is not None

    # ---------------------------------------------------------------- PBT
    def _maybe_update_cfg(self) -> None:
        """PBT's new cfg: α scale and ρ_i go to the kickstart weights (cfg keeps the run's flags), the rest to SF."""
        if self.new_cfg is not None and self.enabled:
            self.new_cfg = self.weights.pop_hyperparameters(self.new_cfg)
        elif self.new_cfg is not None:
            self.new_cfg = {k: v for k, v in self.new_cfg.items() if k not in HYPERPARAMETERS}
        super()._maybe_update_cfg()

    def _maybe_load_policy(self) -> None:
        """PBT exploit. SF 2.1.1 applies the new (mutated) cfg first and then loads the source member's checkpoint,
        whose curr_lr overwrites the freshly mutated value: re-apply it. (The kickstart weights are not restored from
        the source's checkpoint at all: `_load_state` with load_progress=False.)"""
        if self.policy_to_load is None:
            return super()._maybe_load_policy()
        mutated_lr = self.cfg.learning_rate
        super()._maybe_load_policy()
        if self.cfg.lr_schedule == "constant":
            self.curr_lr = mutated_lr
            self._apply_lr(self.curr_lr)

    def set_student_scores(self, scores: Dict[str, float]) -> None:
        """Adaptive λ: the student's running score per teacher (from the runner's `adaptive.AdaptiveLambda`)."""
        if self.enabled:
            self.weights.observe_student_scores(scores)

    # ---------------------------------------------------------------- batch and loss
    def _prepare_batch(self, batch):
        if self.enabled:
            if self._dumps_left > 0:
                flat = lambda x: x[:, :-1].reshape((-1,) + tuple(x.shape[2:])).clone()  # noqa: E731
                self._dump_raw = dict(
                    obs={k: flat(v) for k, v in batch["obs"].items()},
                    teacher_rnn=flat(batch["rnn_states"][..., self.layout.student_rnn :]),
                )
            batch = copy.copy(batch)  # shallow: never modify the batcher's buffers dict
            batch["rnn_states"] = batch["rnn_states"][..., : self.layout.student_rnn]
        return super()._prepare_batch(batch)

    def _calculate_losses(self, mb, num_invalids):
        (
            action_distribution,
            policy_loss,
            exploration_loss,
            kl_old,
            kl_loss,
            value_loss,
            loss_summaries,
        ) = super()._calculate_losses(mb, num_invalids)

        if not self.enabled:
            return action_distribution, policy_loss, exploration_loss, kl_old, kl_loss, value_loss, loss_summaries

        with torch.no_grad():
            lambdas = torch.as_tensor(self.weights.lambdas(self.env_steps), dtype=torch.float32, device=self.device)
            tidx = mb.teacher_idx.long()
            has_teacher = tidx >= 0
            weights = torch.where(has_teacher, lambdas[tidx.clamp_min(0)], torch.zeros_like(mb.teacher_idx))

        student_logits = distribution_logits(action_distribution)
        term = kickstart_loss(student_logits, mb.teacher_logits, weights, mb.valids, self.splits, has_teacher)

        rl_policy_loss = policy_loss
        if self.cfg.kickstart_distill_only:
            policy_loss = term.loss  # pure policy distillation: the RL policy-gradient term is dropped
        else:
            policy_loss = policy_loss + term.loss

        if self._dumps_left > 0 and self._dump_raw is not None:
            self._dump(mb, student_logits, weights, term)
        self._loss_terms["kickstart"] = term.loss
        loss_summaries["ks_term"] = term
        loss_summaries["ks_tidx"] = tidx
        loss_summaries["ks_rl_policy_loss"] = rl_policy_loss
        return action_distribution, policy_loss, exploration_loss, kl_old, kl_loss, value_loss, loss_summaries

    def _dump(self, mb, student_logits, weights, term) -> None:
        import os

        from sample_factory.utils.utils import experiment_dir

        if mb.teacher_logits.shape[0] != self._dump_raw["teacher_rnn"].shape[0]:
            log.warning("kickstart_debug_dump needs one minibatch per batch (--num_batches_per_epoch=1); skipped")
            self._dumps_left = 0
            return
        out_dir = os.path.join(experiment_dir(cfg=self.cfg), "kickstart_debug", f"p{self.policy_id}")
        os.makedirs(out_dir, exist_ok=True)
        idx = int(getattr(self.cfg, "kickstart_debug_dump", 0)) - self._dumps_left
        torch.save(
            dict(
                obs=self._dump_raw["obs"],
                teacher_rnn=self._dump_raw["teacher_rnn"],
                teacher_logits=mb.teacher_logits.detach().cpu().clone(),
                teacher_idx=mb.teacher_idx.detach().cpu().clone(),
                student_logits=student_logits.detach().cpu().clone(),
                weights=weights.detach().cpu().clone(),
                valids=mb.valids.detach().cpu().clone(),
                dones=mb.dones.detach().cpu().clone(),
                loss=float(term.loss.detach()),
                alpha=self.weights.alpha(self.env_steps),
                rho=self.weights.rho.copy(),
                env_steps=int(self.env_steps),
                teacher_names=list(self.weights.teacher_names),
            ),
            os.path.join(out_dir, f"batch_{idx:03d}.pt"),
        )
        self._dumps_left -= 1
        self._dump_raw = None

    # ---------------------------------------------------------------- summaries
    def _record_summaries(self, train_loop_vars):
        var = train_loop_vars
        stats = super()._record_summaries(train_loop_vars)
        if self.enabled and "ks_term" in var:
            stats.policy_loss = float(var.ks_rl_policy_loss)  # train/policy_loss stays the RL term alone
            self._ks_pending = self._kickstart_summaries(var.ks_term, var.ks_tidx)
        return stats

    @torch.no_grad()
    def _kickstart_summaries(self, term, tidx) -> Dict[str, float]:
        """Entries of the kickstart stats message: key -> value, written as KICKSTART + key (see tags.py)."""
        alpha = self.weights.alpha(self.env_steps)
        lambdas = self.weights.lambdas(self.env_steps)
        out = term_summaries(term)
        kl, agree = term.kl, term.agreement
        out["alpha"] = alpha
        out["lambda"] = float(lambdas.mean()) if len(lambdas) else 0.0
        for i, name in enumerate(self.weights.teacher_names):
            rows = term.supervised & (tidx == i)
            out[f"lambda_{name}"] = float(lambdas[i])
            out[f"rho_{name}"] = float(self.weights.rho[i])
            if self.weights.adaptive:
                out[f"adaptive_{name}"] = float(self.weights.factor[i])
            if rows.any():
                out[f"kl_{name}"] = masked_mean(kl, rows)
                out[f"action_agreement_{name}"] = masked_mean(agree, rows)
                out[f"loss_{name}"] = float(lambdas[i]) * masked_mean(term.ce, rows)
        routing = self.layout.routing
        if len(routing.task_names) > 1:
            for task, owner in zip(routing.task_names, routing.teacher_of_task):
                out[tags.task_lambda(task)[len(tags.KICKSTART) :]] = float(lambdas[owner]) if owner >= 0 else 0.0
        return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}

    def train(self, batch):
        stats = super().train(batch)
        if stats is not None and self._ks_pending is not None:
            stats["kickstart_stats"] = self._ks_pending
            self._ks_pending = None
        return stats

    # ---------------------------------------------------------------- checkpoints
    def _get_checkpoint_dict(self):
        checkpoint = super()._get_checkpoint_dict()
        if self.enabled:
            checkpoint[CHECKPOINT_KEY] = self.weights.state_dict(self.env_steps)
        return checkpoint

    def _load_state(self, checkpoint_dict, load_progress=True):
        """Resume (load_progress=True) restores the kickstart weights; a PBT exploit (False) keeps the new cfg's."""
        super()._load_state(checkpoint_dict, load_progress=load_progress)
        state = checkpoint_dict.get(CHECKPOINT_KEY)
        if self.enabled and state is not None and load_progress:
            self.weights.load_state_dict(state)
