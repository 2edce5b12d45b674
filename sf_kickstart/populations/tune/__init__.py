"""A kickstarting PBT population on Ray Tune, beyond one machine: `python -m sf_kickstart.tune` (cli.py).

layout.py      where each file of a population lives (what `sf_kickstart.report.population` reads)
space.py       the hyperparameters, initial members and PBT's explore step (Sample Factory's and sf_kickstart.pbt's
               perturbation, plus resampling)
state.py       the one function that reads/writes a member's checkpoint (frames, learning rate, kickstart state)
trial.py       one trial = one member = one Sample Factory experiment, trained one interval at a time
cli.py         the driver: checks everything before Ray starts, then runs Tune's PopulationBasedTraining

May import the ground floor, `sf` (the member's checks), `populations.pbt` (its explore step) and `kickstart`;
never `report` (which reads a population through `layout`).
"""
