"""`KickstartLearner`: Sample Factory's learner (with the fixes of `sf.fixes.learner.FixedLearner`) plus the kickstart
term, value distillation, their summaries and its checkpointed kickstart weights.

Per minibatch: λ_i = α·ρ_i·f_i for the teacher i of each step (`kickstart.weights.KickstartWeights`, built from the
schedule the set-up validated), or under re-engaging λ λ_k = α·ρ_i(k)·g_k for the task k of each step (its task id,
read from the raw observations as the teacher bank routes it); the kickstart loss (`--kickstart_loss`, per action head
of the heads the set-up validated: `sf.distillation.policy_term` on SF's own distributions, `kickstart.loss` the
formulas) of the student's action distribution from the teacher logits the inference workers stored, added to SF's
policy loss (or replacing it: `--kickstart_distill_only`). With `--kickstart_value_coeff` = c > 0, c·λ·(V_S − V_T)²
on the teacher values stored next to the logits is added to SF's value loss (`kickstart.loss.value_distillation`;
V_T in the student's critic units). `train/policy_loss` and `train/value_loss` stay the RL terms alone; the kickstart
terms are `kickstart/loss` and `kickstart/value_loss`. With `--kickstart_untaught_entropy` (re-engaging λ), −e_k·H(π_S) on the steps of the tasks no
teacher can teach is added to SF's exploration loss (`kickstart.untaught`; `kickstart/untaught_entropy_loss`,
`kickstart/task_exploration/<task>`). The teacher state in `rnn_states`' tail (`sf.storage`) is
sliced off before the student sees the batch. Summaries go to the runner in the kickstart stats message
(`sf.observers`: names relative to `kickstart/`; the runner adds the prefix). On an env with task ids (and under
re-engaging λ) every run, kickstarted or not, also has each step's task id in its batch (`TASK_IDX`) and writes at each
summary, from that minibatch's valid steps, the student's mean entropy per task with SF's training stats
(`train/task_entropy/<task>`) and, kickstarted, the teacher's per supervised task
(`kickstart/task_teacher_entropy/<task>`). The weights' state is saved in every checkpoint and restored on resume;
PBT's α and ρ_i reach them through SF's new-cfg path.

May import: Sample Factory, the ground floor, `kickstart`, `sf.fixes`, `sf.storage`, `sf.distillation`, `sf.observers`.
"""

from __future__ import annotations

import copy
import functools
import math
import os
from typing import Dict, Optional, Sequence

import torch

from sample_factory.utils.utils import experiment_dir, log

from sf_kickstart import tags
from sf_kickstart.kickstart.loss import masked_mean, per_task_means, term_summaries, value_distillation, value_summaries
from sf_kickstart.kickstart.weights import CHECKPOINT_KEY, HYPERPARAMETERS, KickstartWeights, TaskTargets
from sf_kickstart.provenance import IDENTITY_KEY
from sf_kickstart.sf.distillation import distribution_logits, policy_term, student_value_targets
from sf_kickstart.sf.fixes.learner import FixedLearner
from sf_kickstart.sf.observers import TASK_EXPLORATION, TASK_FACTOR, TASK_LAMBDA, TASK_TEACHER_ENTROPY
from sf_kickstart.sf.storage import KickstartLayout
from sf_kickstart.suites.registry import TASK_ID_KEY, default_task_names, task_indices

#: the batch key KickstartLearner adds on an env with task ids and under re-engaging λ: each step's task id
TASK_IDX = "task_idx"


def layout_weights(layout: KickstartLayout) -> KickstartWeights:
    """The kickstart weights of a run: its validated schedule, its teachers' names and ρ, their scores (adaptive, per
    teacher; reengage, per task) and its task -> teacher routing."""
    if layout.schedule is None or layout.heads is None:
        raise ValueError("a learner's KickstartLayout needs its schedule and action heads (sf.setup.build_layout)")
    specs, routing = layout.specs, layout.routing
    scores = None if layout.task_teacher_scores is None else tuple(layout.task_teacher_scores)
    tasks = TaskTargets(tuple(routing.task_names), tuple(routing.teacher_of_task), scores)
    names, rho = [s.name for s in specs], [s.rho for s in specs]
    return KickstartWeights(layout.schedule, names, rho, layout.teacher_scores, tasks, layout.untaught_entropy)


def step_task_ids(obs: Dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Each step's task id, shaped like `like` ([rollouts, T]) from the raw observations ([rollouts, T+1, ...]): the
    argmax of the one-hot `TASK_ID_KEY`, as the teacher bank routes the step (task 0 for an env without one)."""
    if TASK_ID_KEY not in obs:
        return torch.zeros(like.shape, dtype=torch.long, device=like.device)
    return task_indices(obs[TASK_ID_KEY][:, :-1]).to(like.device)


def task_entropies(distribution, task_idx: torch.Tensor, valids: torch.Tensor, task_names: Sequence[str]):
    """{task: the mean entropy of SF's action distribution over the valid steps of the task} (tasks without one: left
    out); the entropy is SF's own, the one `train/entropy` averages over the whole minibatch."""
    return per_task_means(distribution.entropy(), task_idx, valids.bool(), task_names)


class KickstartLearner(FixedLearner):
    """With layout=None: FixedLearner (a plain APPO run)."""

    def __init__(self, cfg, env_info, policy_versions_tensor, policy_id, param_server,
                 layout: Optional[KickstartLayout] = None):
        super().__init__(cfg, env_info, policy_versions_tensor, policy_id, param_server)
        self.layout = layout
        self.weights = layout_weights(layout) if layout is not None else None
        self._ks_pending: Optional[Dict[str, float]] = None
        # --kickstart_debug_dump=K: save the first K training batches' kickstart inputs (diagnostics and tests)
        self._dumps_left = int(getattr(cfg, "kickstart_debug_dump", 0)) if layout is not None else 0
        self._dump_raw: Optional[Dict] = None

    @property
    def enabled(self) -> bool:
        return self.layout is not None

    @functools.cached_property
    def task_names(self) -> Sequence[str]:
        """The run's full task list, index == task id (the teacher routing's; the suite's without teachers)."""
        return self.layout.routing.task_names if self.enabled else default_task_names(self.cfg.env)

    def _has_task_ids(self, obs) -> bool:
        """Whether each step's task id goes into the batch: the env has task ids, or re-engaging λ (task 0 without)."""
        return TASK_ID_KEY in obs or (self.enabled and self.weights.reengage)

    # ---------------------------------------------------------------- PBT
    def _maybe_update_cfg(self) -> None:
        """PBT's new cfg: α scale and ρ_i go to the kickstart weights (cfg keeps the run's flags), the rest to SF."""
        if self.new_cfg is not None and self.enabled:
            self.new_cfg = self.weights.pop_hyperparameters(self.new_cfg)
        elif self.new_cfg is not None:
            self.new_cfg = {k: v for k, v in self.new_cfg.items() if k not in HYPERPARAMETERS}
        super()._maybe_update_cfg()

    # ---------------------------------------------------------------- batch and loss
    def _prepare_batch(self, batch):
        batch = copy.copy(batch)  # shallow: never modify the batcher's buffers dict
        if self.enabled:
            if self._dumps_left > 0:
                flat = lambda x: x[:, :-1].reshape((-1,) + tuple(x.shape[2:])).clone()  # noqa: E731
                self._dump_raw = dict(
                    obs={k: flat(v) for k, v in batch["obs"].items()},
                    teacher_rnn=flat(batch["rnn_states"][..., self.layout.student_rnn :]),
                )
            batch["rnn_states"] = batch["rnn_states"][..., : self.layout.student_rnn]
        if self._has_task_ids(batch["obs"]):  # λ and entropy per task: before SF normalises the observations
            batch[TASK_IDX] = step_task_ids(batch["obs"], batch["dones"])
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
            tidx = mb.teacher_idx.long()
            has_teacher = tidx >= 0
            weights = torch.where(has_teacher, self._step_lambdas(mb, tidx), torch.zeros_like(mb.teacher_idx))

        layout = self.layout
        term = policy_term(
            layout.loss, self.actor_critic.action_space, layout.heads, mb.teacher_logits, action_distribution,
            weights, mb.valids, has_teacher, layout.teacher_smoothing,
        )
        loss_summaries.update(ks_term=term, ks_tidx=tidx, ks_rl_policy_loss=policy_loss, ks_rl_value_loss=value_loss)
        if self.cfg.kickstart_distill_only:
            policy_loss = term.loss  # pure policy distillation: the RL policy-gradient term is dropped
        else:
            policy_loss = policy_loss + term.loss
        self.loss_terms["kickstart"] = term.loss
        if layout.teacher_values:  # value distillation, on the critic's loss
            value_term = self._value_term(mb, loss_summaries["values"], weights, has_teacher)
            value_loss = value_loss + value_term.loss
            self.loss_terms["kickstart_value"] = value_term.loss
            loss_summaries["ks_value_term"] = value_term
        if self.weights.untaught is not None:  # --kickstart_untaught_entropy: part of the exploration loss
            untaught = self._untaught_term(mb, action_distribution)
            exploration_loss = exploration_loss + untaught
            self.loss_terms["untaught_entropy"] = untaught
            loss_summaries["ks_untaught"] = untaught

        if self._dumps_left > 0 and self._dump_raw is not None:
            self._dump(mb, distribution_logits(action_distribution), weights, term, loss_summaries)
        return action_distribution, policy_loss, exploration_loss, kl_old, kl_loss, value_loss, loss_summaries

    def _value_term(self, mb, student_values, weights, has_teacher):
        """coeff·λ·(V_S − V_T)² over valid steps, V_T in the student's critic units (`sf.distillation`)."""
        with torch.no_grad():
            targets = student_value_targets(mb.teacher_values, self.actor_critic.returns_normalizer)
        coeff = self.layout.value_coeff
        return value_distillation(student_values.reshape(-1), targets, coeff * weights, mb.valids, has_teacher)

    def _untaught_term(self, mb, action_distribution) -> torch.Tensor:
        """−Σ e_k(step)·H(π_S) over valid steps / the number of valid steps (`kickstart.untaught`; SF's exploration
        term is averaged the same way); e_k is 0 on taught tasks."""
        coeffs = torch.as_tensor(self.weights.untaught.coefficients(), dtype=torch.float32, device=self.device)
        per_step = coeffs[mb[TASK_IDX]] * action_distribution.entropy()
        valids = mb.valids.bool()
        return -per_step[valids].sum() / valids.sum().clamp_min(1)

    def _step_lambdas(self, mb, tidx: torch.Tensor) -> torch.Tensor:
        """λ of each step: its task's λ_k under re-engaging λ, else its teacher's λ_i (steps without a teacher: any)."""
        if self.weights.reengage:
            lambdas, index = self.weights.task_lambdas(self.env_steps), mb[TASK_IDX]
        else:
            lambdas, index = self.weights.lambdas(self.env_steps), tidx.clamp_min(0)
        return torch.as_tensor(lambdas, dtype=torch.float32, device=self.device)[index]

    def _dump(self, mb, student_logits, weights, term, loss_summaries) -> None:
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
                kickstart_loss=self.layout.loss,
                **self._value_dump(mb, loss_summaries),
                alpha=self.weights.alpha(self.env_steps),
                rho=self.weights.rho.copy(),
                env_steps=int(self.env_steps),
                teacher_names=list(self.weights.teacher_names),
            ),
            os.path.join(out_dir, f"batch_{idx:03d}.pt"),
        )
        self._dumps_left -= 1
        self._dump_raw = None

    def _value_dump(self, mb, loss_summaries) -> Dict:
        """Value distillation's inputs and loss (nothing without it)."""
        if "ks_value_term" not in loss_summaries:
            return {}
        out = dict(
            teacher_values=mb.teacher_values.detach().cpu().clone(),
            student_values=loss_summaries["values"].detach().reshape(-1).cpu().clone(),
            value_loss=float(loss_summaries["ks_value_term"].loss.detach()),
            value_coeff=self.layout.value_coeff,
        )
        normalizer = self.actor_critic.returns_normalizer  # the statistics the targets were normalised with
        if normalizer is not None:
            out.update(student_returns_mean=float(normalizer.running_mean),
                       student_returns_var=float(normalizer.running_var))
        return out

    # ---------------------------------------------------------------- summaries
    def _record_summaries(self, train_loop_vars):
        var = train_loop_vars
        stats = super()._record_summaries(train_loop_vars)
        task_idx = var.mb[TASK_IDX] if TASK_IDX in var.mb else None
        if task_idx is not None:  # SF writes each stats key K as train/K
            entropies = task_entropies(var.action_distribution, task_idx, var.mb.valids, self.task_names)
            stats.update({tags.train_key(tags.task_entropy(task)): h for task, h in entropies.items()})
        if self.enabled and "ks_term" in var:
            stats.policy_loss = float(var.ks_rl_policy_loss)  # train/policy_loss stays the RL term alone
            stats.value_loss = float(var.ks_rl_value_loss)  # train/value_loss too
            self._ks_pending = self._kickstart_summaries(var.ks_term, var.ks_tidx, task_idx)
            if "ks_value_term" in var:
                self._ks_pending.update(value_summaries(var.ks_value_term))
            if "ks_untaught" in var:
                self._ks_pending["untaught_entropy_loss"] = float(var.ks_untaught)
        return stats

    @torch.no_grad()
    def _kickstart_summaries(self, term, tidx, task_idx: Optional[torch.Tensor] = None) -> Dict[str, float]:
        """The kickstart stats message (`sf.observers`): name relative to `kickstart/` -> value; per task under
        TASK_LAMBDA (and TASK_FACTOR, re-engaging λ; TASK_TEACHER_ENTROPY, with the steps' task ids)."""
        lambdas = self.weights.lambdas(self.env_steps)
        out = term_summaries(term)
        kl, agree = term.kl, term.agreement
        out["alpha"] = self.weights.alpha(self.env_steps)
        out["lambda"] = float(lambdas.mean()) if len(lambdas) else 0.0
        for i, name in enumerate(self.weights.teacher_names):
            rows = term.supervised & (tidx == i)
            out[f"lambda_{name}"] = float(lambdas[i])
            out[f"rho_{name}"] = float(self.weights.rho[i])
            if self.weights.adaptive:
                out[f"adaptive_{name}"] = float(self.weights.factor[i])
            if rows.any():
                out[f"kl_{name}"] = masked_mean(kl, rows)
                if agree is not None:  # categorical heads only
                    out[f"action_agreement_{name}"] = masked_mean(agree, rows)
                out[f"loss_{name}"] = masked_mean(term.weights * term.divergence, rows)
        task_names = self.task_names
        if len(task_names) > 1 or self.weights.reengage:
            out[TASK_LAMBDA] = dict(zip(task_names, map(float, self.weights.task_lambdas(self.env_steps))))
        if self.weights.reengage:
            out[TASK_FACTOR] = self.weights.task_factors()
        if self.weights.untaught is not None:
            out[TASK_EXPLORATION] = self.weights.untaught.summaries()
        if task_idx is not None:  # H(π_T) of the kickstart term's diagnostics (categorical: of the stored logits)
            teacher_entropy = term.diagnostics["teacher_entropy"]
            out[TASK_TEACHER_ENTROPY] = per_task_means(teacher_entropy, task_idx, term.supervised, task_names)
        return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}

    def train(self, batch):
        stats = super().train(batch)
        if stats is not None and self._ks_pending is not None:
            stats[tags.KS_STATS_MSG] = self._ks_pending
            self._ks_pending = None
        return stats

    # ---------------------------------------------------------------- checkpoints
    def _get_checkpoint_dict(self):
        checkpoint = super()._get_checkpoint_dict()
        if self.enabled:
            checkpoint[CHECKPOINT_KEY] = self.weights.state_dict(self.env_steps)
            checkpoint[IDENTITY_KEY] = getattr(self.cfg, IDENTITY_KEY, None)  # the teachers this run verified and used
        return checkpoint

    def load_from_checkpoint(self, policy_id, load_progress: bool = True) -> None:
        """SF's load (at init, before the inference workers get the weights; PBT's exploit); a new run (no checkpoint
        loaded) with --kickstart_init_stddev then starts its learned log-std at the teachers' (`sf.setup`)."""
        self._state_loaded = False
        super().load_from_checkpoint(policy_id, load_progress)
        if not self._state_loaded and self.enabled and self.layout.init_log_std is not None:
            log_std = self.actor_critic.action_parameterization.learned_stddev
            with torch.no_grad():
                log_std.copy_(torch.as_tensor(self.layout.init_log_std, dtype=log_std.dtype))
            log.info(f"Student's learned std starts at the teachers': {[round(math.exp(x), 4) for x in log_std]}")

    def _load_state(self, checkpoint_dict, load_progress=True):
        """Resume (load_progress=True) restores the kickstart weights; a PBT exploit (False) keeps the new cfg's α and
        ρ_i and copies the source's re-engaging factors g_k with its weights."""
        super()._load_state(checkpoint_dict, load_progress=load_progress)
        self._state_loaded = True
        state = checkpoint_dict.get(CHECKPOINT_KEY)
        if self.enabled and state is not None and load_progress:
            self.weights.load_state_dict(state)
        elif self.enabled and state is not None:
            self.weights.load_task_factors(state)
