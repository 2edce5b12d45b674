"""The Sample Factory integration: kickstarting wired into Sample Factory 2.1.1's APPO by subclassing and registration
only (no SF source copied, site-packages never edited).

Modules, one job each:
  setup      flags, parsing, validation of everything the user gave, before any worker starts; `build_layout` (the
             validated run: schedule, action heads and divergence, task -> teacher routing, pinned teachers) and
             `prepare`
  storage    `KickstartLayout`; the teacher outputs in SF's buffers and batches, the teacher state in `rnn_states`' tail
  runner     `KickstartRunner` with its sampler, teacher-aware inference worker and learner worker
  learner    `KickstartLearner`: the kickstart term, value distillation, their summaries, the checkpointed kickstart
             weights
  distillation  the kickstart term on SF's own action distributions (Discrete, Box, Tuple): the action heads of SF's
             `action_logits`, each head's divergence and diagnostics, the teacher value in the student's critic units
  observers  the kickstart stats message and its tags; the student-score path of adaptive and re-engaging λ
             (`AdaptiveLambda`)
  progress   the console progress line
  fixes/     SF 2.1.1's defects fixed, each named and documented once (`sf.fixes`); imports nothing of kickstarting

May import: Sample Factory, the ground floor, `kickstart`, `suites`, `teachers`. Never `agents`, `populations` or
`report` (`sf_kickstart.train`, above, composes them with the runner).
"""
