"""An experiment dir as an agent: loading it to play, and what one does with an agent.

  agent          an experiment dir (ours, plain Sample Factory's, zoo:NAME, hf://user/repo) as a policy to play:
                 its config, env registration, latest/best checkpoint through `checkpoints`, the model built by
                 `teachers.frozen`
  evaluate       side-by-side evaluation (vectorised envs, bootstrap CIs from `stats`, the evaluation cache)
  enjoy          Sample Factory's enjoy for every experiment (video, signals, the Hub upload)
  periodic_eval  `--eval_every_frames`: the runner-side observer and the evaluation process it starts
  zoo            `python -m sf_kickstart.zoo` (the listing) and `zoo.ship` (making a shipped teacher)

May import: Sample Factory, the ground floor, `kickstart`, `suites`, `teachers`, `sf` (setup's flag parsing, the
fixed learner for SF's enjoy). Never `populations` or `report`.
"""
