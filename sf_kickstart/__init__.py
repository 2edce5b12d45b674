"""sf_kickstart: Kickstarting Deep RL (Schmitt et al. 2018) on Sample Factory's APPO."""

__version__ = "0.1.0"
