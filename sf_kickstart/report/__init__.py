"""python -m sf_kickstart.report TRAIN_DIR [TRAIN_DIR ...] [--out DIR] [options]

Paper-style tables (Schmitt et al. 2018, Tables 1-3) and PNG plots (Figure 2) from the tensorboard event files of
Sample Factory experiments. Typical use, after the two launcher stages (see launchers/):

    python -m sf_kickstart.report train_dir/minigrid_teachers train_dir/minigrid_ablation --out report

What it reads
-------------
Every directory under the TRAIN_DIRs (searched recursively, hidden dirs skipped) that holds `.summary/` is one
experiment: `<experiment>/.summary/<policy_id>/events.out.tfevents.*` (all event files of a policy are merged, a
step that goes back after a restart drops the later points, as tensorboard does), plus its `config.json` and
`sf_log.txt` when present.

* Method and seed: the method is the experiment name without a `_seed<N>` suffix (the launchers' naming) — also
  understood: Sample Factory's launcher naming `NN_<name>_see_<N>` and `_seed_<N>`. The seed is `config.json`'s
  `seed`, else the `<N>` of the suffix. Experiments with the same method are the seeds of that method.
* Population Based Training: an experiment with `with_pbt` (or, without config.json, several policy dirs) is a
  population; each policy is a member. A population is *one run* of its method (one seed): the mean curve of its top
  `--pbt_top` (3) members by final score (the paper's convention); every other experiment is one run per policy
  (normally one).
* Score metric (`--metric`): `suite/score` (the capped mean normalised suite score) when any run has it, else Sample
  Factory's `reward/reward`. Runs without the metric are listed and left out of the score tables.
* `suite/score` (and `suite/mean_normalized`) average only the tasks that have finished an episode so far, so a
  run's early points over-weight the short, easy tasks; where `suite/tasks_seen` (or Atari's `suite/games_seen`) is
  logged, the points before it reaches its final value are dropped (a run too short for every task to report has no score).
* Teacher: `config.json`'s `teacher` is resolved like sf_kickstart.train does (as given, then under the run's
  train_dir, then by experiment name among the experiments read); its *final score* on the same metric is the
  threshold "teacher's final score". A teacher trained on a different env than the student (scores on different
  task sets), or a multi-teacher map (`--teachers`), gives no teacher threshold for that method.
* Run status, from `sf_log.txt`: Sample Factory logs `Saving configuration to ...` when a run (re)starts and
  `Collected {...}, FPS: ...` when its main loop ends. A run whose last start is not followed by a `Collected` line
  is *unfinished* (still running, or killed/crashed). Unfinished runs are included and flagged with `*` (their
  "final" score is their latest); `--exclude_running` leaves them out. Without `sf_log.txt` the status is unknown
  and the run counts as finished.

Numbers (all computed from logged points; no smoothing beyond what the metric already averages)
----------------------------------------------------------------------------------------------
* value of a run at frame F: its last logged value at a step <= F; a run *covers* F when its last step is
  >= F - max(2% of B, two of its logging intervals) (Sample Factory logs summaries every few seconds, so the last
  point of a finished run lags its final frame a little). B, the reference frames, is `--frames`, else the largest
  `train_for_env_steps` of the runs in the tables (config.json), else their largest last step.
* final score of a run: mean of its values over the last `--final_window` (5%) of its frames.
* mean curve of a method: at every logged step of any of its runs where all its runs have data (from the latest first
  step to the earliest last step), the mean of the runs' values at that step; the band is the pointwise 95 %
  bootstrap interval of that mean (`sf_kickstart.stats`; none for a single run).
* Intervals: every mean over runs (seeds) is shown as `mean [lo, hi]`, the 95 % percentile-bootstrap interval of the
  mean (10,000 resamples, fixed seed; no interval with one run); `n` is the number of runs of the method.
* Table 1, score at frame budgets: mean [CI] over the runs that cover F = fraction × B (`--budgets`,
  default 0.1, 0.25, 0.5, 1); `(k/n)` when only k of n runs cover it.
* Table 2, frames to reach a score: the first step of the method's mean curve at which it is >= the threshold
  (`-` when never), and each run's own first step, mean [CI] over the k of n runs that reach it. Thresholds: the teacher's final score, the baseline's final
  score and `--thresholds`. Speedup = baseline frames / method frames; when only one of them reached the threshold
  the ratio with the other's last frame is a bound (`≥`, `≤`).
* Table 3, final score: mean [CI] of the runs' final scores and the improvement over the baseline,
  100 · (method − baseline) / |baseline| %, with its bootstrap interval (both methods' runs resampled).
* Baseline (`--baseline`): `large_scratch` when present, else the only method without a teacher whose name contains
  `scratch`.
* Kickstarting diagnostics: final values of `kickstart/lambda`, `alpha`, `kl_teacher_student`, `action_agreement`
  (categorical heads), `teacher_entropy`, `loss`, and for Gaussian (Box) heads `mean_squared_error`, `teacher_std`,
  `student_std`, with value distillation `value_loss`, `value_mse` (`tags.KS_DIAGNOSTICS`; a column no run writes is
  left out); per-task final normalised scores from `suite/<Task>_normalized`.

Plots
-----
`learning_curves.png` (mean curve and its 95 % bootstrap band per method, the teacher's final score as a dashed line and a marker
where the method's mean curve first reaches its teacher's final score), `lambda.png` (`kickstart/lambda` over
frames per method, the paper's Figure 2 bottom), `lambda_tasks.png` (per-task λ_i heat map over frames, only for
methods whose per-task λ differ — per-task teachers, adaptive λ, ρ_i — from
`kickstart/task_lambda/<task>`; in runs from before that tag, the `kickstart/lambda_<X>` tags with no matching
`kickstart/rho_<X>`, which are the teachers' own), `pbt_lambda.png` (λ of every member of each population over frames — `kickstart/lambda`, else
Sample Factory's `zz_pbt/cfg_kickstart_lambda` — with exploit events drawn as arrows from the source's λ to the
member's: the `kickstart/pbt_exploit_from` summaries of sf_kickstart.pbt, else Sample Factory's
`Asking learner <i> to load model from <j>` lines in sf_log.txt, mapped to frames through the event wall times).

Bad input
---------
A TRAIN_DIR that does not exist: exit 2. No experiment found, or no run has the metric nor any `kickstart/*` tag:
exit 1 with the reason (and the tags that do exist). Anything less (a corrupt event file, a run without the
metric, a missing baseline or teacher, unfinished runs) is a note in the report and on stderr, with partial tables.

Package layout
--------------
model       what experiments are read into (Experiment, Unit) and the method/seed naming;
io          reading experiment dirs (event files through `sf_kickstart.events`, config.json, sf_log.txt) into
            Experiments, resolving each `--teacher` (disk access);
population  reading a Ray Tune population (`python -m sf_kickstart.tune`) as one PBT Experiment;
analysis    small pure steps composed by `analyse` into an `Analysis` holding every number shown;
markdown    `render_markdown`: one function per section, formatting only;
plots       one function per figure, drawing only;
cli         `main`, the entry point `python -m sf_kickstart.report` (above the package: nothing here imports it).

The report is the top layer below the entry points: it may import every package (it reads Tune populations through
`populations.tune.layout`); nothing but an entry point imports it.
"""

from sf_kickstart.events import Series, read_scalars
from sf_kickstart.experiments import format_frames as fmt_frames
from sf_kickstart.report.analysis import (
    Analysis,
    Curve,
    Options,
    analyse,
    comparable_scalars,
    exploit_frames,
    final_score,
    first_reach,
    mean_curve,
    value_at,
)
from sf_kickstart.report.io import load_experiment, load_experiments
from sf_kickstart.report.markdown import render_markdown
from sf_kickstart.report.model import Experiment, Unit, parse_experiment_name
from sf_kickstart.report.plots import make_plots

__all__ = [
    "Analysis", "Curve", "Experiment", "Options", "Series", "Unit", "analyse", "comparable_scalars", "exploit_frames",
    "final_score", "first_reach", "fmt_frames", "load_experiment", "load_experiments", "make_plots", "mean_curve",
    "parse_experiment_name", "read_scalars", "render_markdown", "value_at",
]
