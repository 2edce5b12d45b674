"""The method itself, Schmitt et al. (2018), with no Sample Factory import: what a reader checks against the paper.

  loss       the kickstart term: the divergences of `--kickstart_loss` (the paper's H(π_T, π_S), KL(π_S ‖ π_T), the MSE
             on Gaussian means) per action head (categorical, diagonal Gaussian), the categorical formulas, the
             λ-weighted mean over valid steps, value distillation c·λ·(V_S − V_T)², their diagnostics
  schedules  α(t): constant, linear to 0, exponential with a floor (`KickstartSchedule`), and the adaptive and
             reengage markers
  weights    λ_i(t) = α(t) · ρ_i (· f_i(t) for adaptive λ), λ per task (· g_k(t) for re-engaging λ):
             `KickstartWeights`, its checkpoint state and the hyperparameters PBT mutates
  adaptive   the adaptive rule: f_i = running min of clip(1 − G_S,i / G_T,i, 0, 1), G_T checked, G_S per teacher
  reengage   the re-engaging rule: per task g_k = clip(1 − G_S,k / G_T,k, 0, 1) from the current score, why, G_T,k

May import: torch, numpy, gymnasium's spaces, the ground floor (`tags`, `errors`). Nothing else of the project.
"""
