"""Populations: Population Based Training of α, ρ_i, learning rate and entropy cost (the paper's PBT-λ).

  pbt    in-process, on one machine: Sample Factory's PBT (one SF policy per member) with the kickstart
         hyperparameters, the paper's explore/exploit rules and SF's defects around it fixed (`KickstartPBT`)
  tune/  the same population on Ray Tune, beyond one machine: each member one SF experiment, trained one interval
         at a time, exploit by checkpoint (`python -m sf_kickstart.tune`)

May import: Sample Factory, Ray, the ground floor, `kickstart`, `suites`, `teachers`, `sf`. Never `agents` or
`report`.
"""
