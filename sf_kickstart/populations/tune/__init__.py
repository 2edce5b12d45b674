"""A kickstarting PBT population on Ray Tune, beyond one machine: `python -m sf_kickstart.tune` (cli.py).

space.py       the hyperparameters, initial members and PBT's explore step (Sample Factory's and sf_kickstart.pbt's
               perturbation, plus resampling)
state.py       the one function that reads/writes a member's checkpoint (frames, learning rate, kickstart state)
trial.py       one trial = one member = one Sample Factory experiment, trained one interval at a time
population.py  reads a finished (or running) population for sf_kickstart.report
"""
