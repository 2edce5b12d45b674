"""What a Ray Tune population evolves: the hyperparameters, the initial members, and PBT's explore step.

Hyperparameters (`--tune_hyperparams`, flat names): `learning_rate`, `exploration_loss_coeff` (the entropy cost),
`kickstart_lambda` (α's scale) and `kickstart_rho` (every ρ_i; `kickstart_rho_<teacher>` names one). Without a
teacher only the first two exist.

Explore, at an exploit (the member has just copied a better member's checkpoint): every hyperparameter is explored
with probability `--pbt_mutation_rate` (Sample Factory's coin). An explored value is resampled from its prior with
probability `--tune_resample_probability` (the PBT paper's resample step), else perturbed exactly as the in-process
PBT perturbs it: Sample Factory's `_perturb_param` (×/÷ a factor drawn from [`--pbt_perturb_min`,
`--pbt_perturb_max`], 1 % chance to return to the default) and, for α and ρ_i, `sf_kickstart.pbt`'s ×1.2/×0.8 and floor (values
stay >= 0, below `--kickstart_pbt_zero_below` they become exactly 0). That code is called, not copied.

Prior: log-uniform over [v0 / R, v0 · R], v0 the value the flags give, R = `--tune_prior_range`.
Initial population: member 0 runs the flags' values (as in Sample Factory's PBT); every other member draws its
learning rate, entropy cost and α from the prior. ρ_i start at the teacher map's values in every member: before a
member's first checkpoint exists the command line can set α but not ρ_i; they are explored from the first exploit on.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from sample_factory.pbt.population_based_training import PopulationBasedTraining
from sample_factory.utils.attr_dict import AttrDict

from sf_kickstart.errors import UserError
from sf_kickstart.populations.pbt import KickstartPBT
from sf_kickstart.kickstart.weights import ALPHA_SCALE_KEY as ALPHA_KEY
from sf_kickstart.kickstart.weights import HYPERPARAMETERS, RHO_KEY

SF_KEYS = ("learning_rate", "exploration_loss_coeff")
RHO_PREFIX = RHO_KEY + "_"  # + teacher name: one ρ_i as a flat hyperparameter (Tune's config is flat)
DEFAULT_HYPERPARAMS = SF_KEYS + HYPERPARAMETERS


class HyperparamError(UserError):
    pass


class _Perturber:
    """Sample Factory's and sf_kickstart.pbt's perturbation, outside their event loop: both methods read only
    `self.cfg` (the pbt_* flags) and `self.zero_below`."""

    _perturb_param = PopulationBasedTraining._perturb_param
    _explore = KickstartPBT._explore

    def _perturb_nonneg(self, value: float, key: str, initial: float) -> float:
        """α and ρ_i: the in-process PBT's ×1.2/×0.8 and zero floor (resampling is `SearchSpace.explore`'s own coin)."""
        return self._explore(value, initial, 0.0)

    def __init__(self, cfg):
        # the mutation coin is tossed by `explore` (resample and perturb are alternatives), so never here
        self.cfg = AttrDict(pbt_mutation_rate=1.0, pbt_perturb_min=cfg.pbt_perturb_min, pbt_perturb_max=cfg.pbt_perturb_max)
        self.zero_below = float(cfg.kickstart_pbt_zero_below)


@dataclass
class SearchSpace:
    defaults: Dict[str, float]  # every hyperparameter a member carries (flat names), at the flags' values
    mutated: List[str]  # the ones explored
    mutation_rate: float
    resample_probability: float
    prior_range: float
    perturber: _Perturber = field(repr=False, default=None)

    def nonneg(self, key: str) -> bool:
        return key == ALPHA_KEY or key.startswith(RHO_PREFIX)

    def sample_prior(self, key: str, rng: random.Random) -> float:
        v0 = float(self.defaults[key])
        if v0 <= 0.0:
            return v0
        return math.exp(rng.uniform(math.log(v0 / self.prior_range), math.log(v0 * self.prior_range)))

    def initial(self, member: int, seed: int = 0) -> Dict[str, float]:
        rng = random.Random(1000003 * (seed + 1) + member)
        hp = dict(self.defaults)
        if member > 0:
            for key in self.mutated:
                if not key.startswith(RHO_PREFIX):
                    hp[key] = self.sample_prior(key, rng)
        return hp

    def explore(self, hp: Dict[str, float], rng: Optional[random.Random] = None) -> Dict[str, float]:
        rng = rng or random
        new = dict(hp)
        for key in self.mutated:
            if rng.random() >= self.mutation_rate:
                continue
            if rng.random() < self.resample_probability:
                new[key] = self.sample_prior(key, rng)
            elif self.nonneg(key):
                new[key] = self.perturber._perturb_nonneg(hp[key], key, self.defaults[key])
            else:
                new[key] = float(self.perturber._perturb_param(float(hp[key]), key, self.defaults[key]))
        return new

    def explore_config(self, config: Dict) -> Dict:
        """Ray Tune's `custom_explore_fn`: the trial config holds the member's values under "hp"."""
        config["hp"] = self.explore(config["hp"])
        return config


def build_space(cfg, teachers: Dict[str, float], names: Sequence[str], resample_probability: float,
                prior_range: float) -> SearchSpace:
    """`teachers`: {teacher name: initial ρ} (empty without a teacher). HyperparamError for unknown names."""
    defaults = {k: float(cfg[k]) for k in SF_KEYS}
    if teachers:
        defaults[ALPHA_KEY] = float(cfg.kickstart_lambda)
        defaults.update({RHO_PREFIX + name: float(rho) for name, rho in teachers.items()})
    known = list(SF_KEYS) + ([ALPHA_KEY, RHO_KEY] + [k for k in defaults if k.startswith(RHO_PREFIX)] if teachers else [])
    mutated: List[str] = []
    for name in names:
        if name not in known:
            why = "" if teachers or name not in DEFAULT_HYPERPARAMS else " (kickstart hyperparameters need a teacher)"
            raise HyperparamError(f"unknown hyperparameter {name!r} in --tune_hyperparams{why}; known: {', '.join(known)}")
        expanded = [k for k in defaults if k.startswith(RHO_PREFIX)] if name == RHO_KEY else [name]
        mutated += [k for k in expanded if k not in mutated]
    if not mutated:
        raise HyperparamError("--tune_hyperparams names nothing to mutate")
    if not 0.0 <= resample_probability <= 1.0 or prior_range < 1.0:
        raise HyperparamError("--tune_resample_probability must be in [0, 1] and --tune_prior_range >= 1")
    return SearchSpace(defaults, mutated, float(cfg.pbt_mutation_rate), resample_probability, prior_range, _Perturber(cfg))
