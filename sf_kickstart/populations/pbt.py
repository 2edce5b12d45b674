"""Sample Factory's Population Based Training extended with the kickstart weights.

Besides SF's own hyperparameters (learning rate, entropy cost, value coefficient, grad norm, clip ratios), every
population member carries
  * `kickstart_lambda`  α's scale (with `--kickstart_schedule=constant` PBT controls λ entirely: the paper's PBT-λ);
  * `kickstart_rho`     {teacher name: ρ_i}, one weight per teacher, so all teachers can get stronger or weaker
                        together (α) or one alone (ρ_i).
They are explored as in the kickstarting paper (and PBT's): at every PBT update of a member, each of them is
resampled with probability `--kickstart_pbt_resample_prob` (uniform in [0, 2 × its initial value]) and otherwise
multiplied by 1.2 or 0.8 (equal odds). A value below `--kickstart_pbt_zero_below` becomes exactly 0: the student is
then free of that teacher (0 stays 0 under multiplication; a resample can bring it back). The initial population:
member 0 starts at the flags' values, every other member at a resample. (SF's own keys keep SF's perturbation.)
Exploit is SF's: at each `--pbt_period_env_steps`, a member in the bottom `--pbt_replace_fraction` copies a member of
the top fraction (when the objective gap is larger than `--pbt_replace_reward_gap`, relative; SF's default 0.1 stops
all exploits once the members are within 10 % of each other, so the ablation launcher passes 0: the paper's
truncation selection), then explores. SF never mutates member 0 (it keeps it as an unmutated reference); with
`--kickstart_pbt_explore_all=True` (default) member 0 explores like every other member outside the top fraction, as
in the paper, where no member is exempt.

Exploit: SF copies the better member's weights and optimizer (checkpoint, `load_progress=False`) and hands the
perturbed copy of its cfg to the learner, including its α and ρ_i: the λ state is copied, then explored. The
learner hands α and ρ_i to its `weights.KickstartWeights` (`pop_hyperparameters`; the learner's cfg keeps the run's
flags) and does not restore them from the source's checkpoint (re-engaging λ's per-task factors g_k it does copy from
there, with the weights they were computed for; the member's next student scores update them); it re-applies the
mutated lr after loading the weights (SF 2.1.1 let the source checkpoint's lr overwrite the freshly mutated value).

Ranking objective: `--pbt_target_objective` (defaults to `suite_score`, the capped mean normalised suite score, when
the env is one of our suites). Each exploit is written to tensorboard as `kickstart/pbt_exploit_from` (the source
member's id) so the report can draw the lineage.
"""

from __future__ import annotations

import copy
import random
from typing import Dict

from sample_factory.pbt.population_based_training import PopulationBasedTraining
from sample_factory.utils.utils import log

from sf_kickstart import tags
from sf_kickstart.kickstart.weights import HYPERPARAMETERS

KICKSTART_PBT_KEYS = HYPERPARAMETERS  # α scale, {teacher: ρ_i}: what the learner's KickstartWeights take from PBT


class KickstartPBT(PopulationBasedTraining):
    def __init__(self, cfg, runner, layout=None):
        super().__init__(cfg, runner)
        self.layout = layout
        self.initial_rho: Dict[str, float] = {s.name: float(s.rho) for s in layout.specs} if layout else {}
        self.zero_below = float(getattr(cfg, "kickstart_pbt_zero_below", 1e-3))
        self.resample_prob = float(getattr(cfg, "kickstart_pbt_resample_prob", 0.25))
        self.explore_all = bool(getattr(cfg, "kickstart_pbt_explore_all", True))

    # ------------------------------------------------------------------ cfg
    def _defaults(self) -> Dict:
        d = dict(self.cfg)
        d["kickstart_rho"] = dict(self.initial_rho)
        return d

    def on_init(self, runner) -> None:
        super().on_init(runner)
        if self.layout is None:
            return
        changed = False
        for policy_id in range(self.cfg.num_policies):
            pcfg = self.policy_cfg[policy_id]
            if "kickstart_lambda" not in pcfg:  # fresh population (not loaded from policy_XX_cfg.json)
                pcfg["kickstart_lambda"] = float(self.cfg.kickstart_lambda)
                pcfg["kickstart_rho"] = dict(self.initial_rho)
                if policy_id > 0:
                    self._perturb_kickstart(pcfg, resample_prob=1.0)
                changed = True
        if changed:
            for policy_id in range(self.cfg.num_policies):
                self._save_cfg(policy_id)

    def _perturb_kickstart(self, pcfg: Dict, resample_prob: float = None) -> None:
        defaults = self._defaults()
        p = self.resample_prob if resample_prob is None else resample_prob
        pcfg["kickstart_lambda"] = self._explore(pcfg["kickstart_lambda"], defaults["kickstart_lambda"], p)
        pcfg["kickstart_rho"] = {
            name: self._explore(value, defaults["kickstart_rho"].get(name, 1.0), p)
            for name, value in pcfg["kickstart_rho"].items()
        }

    def _explore(self, value: float, initial: float, resample_prob: float) -> float:
        """The paper's explore: resample uniformly in [0, 2·initial] with probability `resample_prob`, else ×1.2 or
        ×0.8; then the zero floor."""
        if random.random() < resample_prob:
            new_value = random.uniform(0.0, 2.0 * max(float(initial), 0.0))
        else:
            new_value = float(value) * random.choice((1.2, 0.8))
        return 0.0 if new_value < self.zero_below else new_value

    def _update_policy(self, policy_id, policy_stats):
        """SF's exploit/explore step; with explore_all, member 0 also explores when SF updated it (SF only copies the
        source's cfg into member 0, unperturbed). SF's paths that leave a member alone (top fraction, no data yet)
        leave `replacement_policy` untouched: a sentinel tells them apart."""
        untouched = object()
        pending, self.replacement_policy[policy_id] = self.replacement_policy[policy_id], untouched
        super()._update_policy(policy_id, policy_stats)
        if self.replacement_policy[policy_id] is untouched:
            self.replacement_policy[policy_id] = pending
        elif policy_id == 0 and self.explore_all:
            self.policy_cfg[0] = self._perturb_cfg(self.policy_cfg[0])
            self.policy_reward_shaping[0] = self._perturb_reward(self.policy_reward_shaping[0])

    def _perturb_cfg(self, original_cfg):
        """SF's perturbation for its own keys, ours for α and ρ_i (SF's walks default values in self.cfg, which has
        no per-teacher ρ)."""
        cfg = copy.deepcopy(original_cfg)
        ks = {k: cfg.pop(k) for k in KICKSTART_PBT_KEYS if k in cfg}
        cfg = super()._perturb_cfg(cfg)
        if ks:
            cfg.update(ks)
            self._perturb_kickstart(cfg)
        return cfg

    def on_start(self, runner) -> None:
        super().on_start(runner)
        for policy_id in range(self.cfg.num_policies):  # the initial assignment starts the lineage
            if policy_id in runner.writers:
                self._write_pbt_summaries(policy_id, runner.env_steps.get(policy_id, 0), runner.writers[policy_id])

    def _write_pbt_summaries(self, policy_id, env_steps, writer) -> None:
        """SF's zz_pbt/cfg_<key> scalars, with ρ flattened as zz_pbt/cfg_kickstart_rho_<teacher>."""
        original = self.policy_cfg[policy_id]
        flat = {k: v for k, v in original.items() if k != "kickstart_rho"}
        for name, value in original.get("kickstart_rho", {}).items():
            flat[f"kickstart_rho_{name}"] = value
        self.policy_cfg[policy_id] = flat
        try:
            super()._write_pbt_summaries(policy_id, env_steps, writer)
        finally:
            self.policy_cfg[policy_id] = original

    # ------------------------------------------------------------------ lineage
    def on_saved_model(self, replacement_policy) -> None:
        for policy_id in range(self.cfg.num_policies):
            if self.replacement_policy[policy_id] == replacement_policy and replacement_policy != policy_id:
                steps = self.runner.env_steps.get(policy_id, 0)
                writer = self.runner.writers.get(policy_id)
                if writer is not None:
                    writer.add_scalar(tags.EXPLOIT, replacement_policy, steps)
                log.info(f"PBT: policy {policy_id} exploits policy {replacement_policy} (weights, optimizer, λ state)")
        super().on_saved_model(replacement_policy)

