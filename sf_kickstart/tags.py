"""Every tensorboard tag and shared stats key sf_kickstart writes or reads: the learner, the suites, PBT and the
report all name them from here, so a writer and its reader cannot drift apart.

Kickstart summaries (written under the policy's `.summary/<policy_id>/` by the learner, see README's table):
    kickstart/<name>                  run-wide: loss, alpha, lambda (mean λ_i), kl_teacher_student, ... (KS_DIAGNOSTICS);
                                      with a Gaussian action head also mean_squared_error (of the means), teacher_std,
                                      student_std; with value distillation value_loss, value_mse
                                      (action_agreement: categorical heads only)
    kickstart/lambda_<teacher>        λ_i = α·ρ_i of one teacher         (per teacher)
    kickstart/rho_<teacher>           ρ_i of one teacher                  (per teacher)
    kickstart/kl_<teacher>, kickstart/action_agreement_<teacher>, kickstart/loss_<teacher>
    kickstart/task_lambda/<task>      λ applied to a task's samples: its teacher's λ_i (0: none), times g_k under
                                      re-engaging λ; multi-task envs (and every env under re-engaging λ)
                                      (per task: its own prefix, so a teacher named like a task cannot overwrite it)
    kickstart/task_factor/<task>      re-engaging λ's factor g_k of a supervised task (λ_k = α·ρ_i·g_k)
    kickstart/task_teacher_entropy/<task>  the teacher's mean H(π_T) on a supervised task's valid steps of the
                                      summary's minibatch (envs with task ids; tasks in that minibatch only)
    kickstart/pbt_exploit_from        PBT: the source member of an exploit (step = the receiving member's frames)
Learner summaries next to Sample Factory's `train/*` (written as its stats, so from-scratch runs have them too):
    train/task_entropy/<task>         the student's mean action-distribution entropy on a task's valid steps of the
                                      summary's minibatch (envs with task ids; tasks in that minibatch only)
Suite summaries (the suites' normalised score):
    suite/<task>_score, suite/<task>_normalized, suite/score, suite/mean_normalized, suite/tasks_seen
    (Atari also writes its historical alias suite/games_seen; the report reads either)
Periodic evaluation (`--eval_every_frames`, sf_kickstart.agents.periodic_eval; step = the evaluated checkpoint's frames):
    eval/<task> (suite-scale score), eval/<task>_return (mean raw return), eval/suite_score
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------------------- kickstart
KICKSTART = "kickstart/"
LAMBDA = KICKSTART + "lambda"
ALPHA = KICKSTART + "alpha"
EXPLOIT = KICKSTART + "pbt_exploit_from"
TEACHER_LAMBDA_PREFIX = KICKSTART + "lambda_"  # + teacher name
TEACHER_RHO_PREFIX = KICKSTART + "rho_"  # + teacher name
TASK_LAMBDA_PREFIX = KICKSTART + "task_lambda/"  # + task name
TASK_FACTOR_PREFIX = KICKSTART + "task_factor/"  # + task name
TASK_TEACHER_ENTROPY_PREFIX = KICKSTART + "task_teacher_entropy/"  # + task name
TASK_EXPLORATION_PREFIX = KICKSTART + "task_exploration/"  # + task name: the untaught-task entropy coefficient e_k
UNTAUGHT_ENTROPY_LOSS = KICKSTART + "untaught_entropy_loss"  # its term, −mean(e_k·H(π_S)), part of the exploration loss
#: run-wide kickstart diagnostics the report tabulates (tags: KICKSTART + name); a run writes those of its action
#: heads (action_agreement: categorical; mean_squared_error, teacher_std, student_std: Gaussian) and value_loss,
#: value_mse with value distillation
KS_DIAGNOSTICS = ("lambda", "alpha", "kl_teacher_student", "action_agreement", "teacher_entropy", "loss",
                  "mean_squared_error", "teacher_std", "student_std", "value_loss", "value_mse")
#: the learner's stats message to the runner, whose entries become KICKSTART + key
KS_STATS_MSG = "kickstart_stats"


def kickstart(name: str) -> str:
    return KICKSTART + name


def teacher_lambda(teacher: str) -> str:
    return TEACHER_LAMBDA_PREFIX + teacher


def task_lambda(task: str) -> str:
    return TASK_LAMBDA_PREFIX + task


def task_factor(task: str) -> str:
    return TASK_FACTOR_PREFIX + task


def task_teacher_entropy(task: str) -> str:
    return TASK_TEACHER_ENTROPY_PREFIX + task


def task_exploration(task: str) -> str:
    return TASK_EXPLORATION_PREFIX + task


# ------------------------------------------------------------------------------------------------------------- suites
SUITE = "suite/"
SUITE_SCORE = SUITE + "score"
SUITE_MEAN_NORMALIZED = SUITE + "mean_normalized"
TASKS_SEEN = SUITE + "tasks_seen"
GAMES_SEEN = SUITE + "games_seen"  # Atari's name for TASKS_SEEN (kept: existing runs and dashboards use it)
SEEN_TAGS = (TASKS_SEEN, GAMES_SEEN)
SUITE_AGGREGATES = (SUITE_SCORE, SUITE_MEAN_NORMALIZED)
NORMALIZED_SUFFIX = "_normalized"
#: the key of runner.policy_avg_stats holding the suite score (the PBT objective, --save_best_metric)
SUITE_SCORE_KEY = "suite_score"


def task_score(task: str) -> str:
    return f"{SUITE}{task}_score"


def task_normalized(task: str) -> str:
    return f"{SUITE}{task}{NORMALIZED_SUFFIX}"


def normalized_task(tag: str):
    """The task of a `suite/<task>_normalized` tag, else None."""
    if tag.startswith(SUITE) and tag.endswith(NORMALIZED_SUFFIX) and tag != SUITE_MEAN_NORMALIZED:
        return tag[len(SUITE) : -len(NORMALIZED_SUFFIX)]
    return None


# -------------------------------------------------------------------------------------------------- periodic evaluation
EVAL = "eval/"
EVAL_SUITE_SCORE = EVAL + "suite_score"


def eval_task_score(task: str) -> str:
    return EVAL + task


def eval_task_return(task: str) -> str:
    return f"{EVAL}{task}_return"


# ---------------------------------------------------------------------------------------------------------------- SF
REWARD = "reward/reward"
PBT_LAMBDA = "zz_pbt/cfg_kickstart_lambda"  # Sample Factory's PBT summary of a mutated cfg value
PBT_LR = "zz_pbt/cfg_learning_rate"
TRAIN = "train/"  # the learner's stats: SF writes each stats key K as TRAIN + K
TRAIN_LR = TRAIN + "lr"
NONFINITE_SKIPPED = TRAIN + "nonfinite_skipped"  # minibatches skipped for a non-finite loss or gradient (cumulative)
TASK_ENTROPY_PREFIX = TRAIN + "task_entropy/"  # + task name: the student's entropy per task


def train_key(tag: str) -> str:
    """The learner's stats key SF writes as `tag` (TRAIN + key)."""
    return tag[len(TRAIN) :]


def task_entropy(task: str) -> str:
    return TASK_ENTROPY_PREFIX + task


SCORE_METRICS = (SUITE_SCORE, REWARD)
