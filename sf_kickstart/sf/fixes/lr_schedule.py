"""`--lr_schedule=linear_decay`: the learning rate falls linearly from `--learning_rate` to 0 at
`--train_for_env_steps`, the annealing PPO's and CleanRL's defaults use.

Sample Factory 2.1.1 has a `LinearDecayScheduler` (sample_factory/algo/learning/learner.py) that cannot be used as it
stands:
  * its command line refuses it: `--lr_schedule`'s choices (sample_factory/cfg/cfg.py) omit "linear_decay";
  * its step counter starts at 0 in every process, so a resumed run's learning rate jumps back to the start and then
    decays over a whole budget again;
  * it counts SGD steps as train_for_env_steps // batch_size × num_epochs, but env steps are frames: with a frameskip
    (Atari: 4 frames per sample) it has made a quarter of those steps at the end and the rate stops at ¾ of its start;
  * it decays SF's starting `learning_rate` only, so a PBT member's mutated rate is overwritten at the next minibatch.
Here the rate is a function of the learner's own frame count: lr = learning_rate × max(0, 1 − env_steps /
train_for_env_steps), with env_steps as SF counts them (restored on resume, kept by a PBT exploit) and learning_rate
the current cfg's (PBT's mutation scales the rest of the curve).

`--lr_kl_brake=True` (with `constant` or `linear_decay`) multiplies that rate by a factor k ∈ [0.01, 1]: after each
minibatch whose mean KL between the behaviour policy and the current one (SF's `train/kl_divergence`) is above
2 × `--lr_schedule_kl_threshold`, k /= 1.5; below ½ × the threshold, k = min(1, 1.5 k). SF's `kl_adaptive_*`
schedules use the same rule on the rate itself, which also *raises* it (up to `--lr_adaptive_max`, 1e-2 by default)
and replaces PBT's rate; the brake only ever slows the schedule down, and PBT's rate still scales it. Why (issue 20):
the large MiniGrid student's collapses at a constant 5e-4 begin with a run of updates whose KL is 50-100× the usual
(one epoch of one minibatch, so PPO's clip cannot bind on the first step and the gradient norm, ≤ 0.7, never reaches
`--max_grad_norm`); k is not checkpointed (a resumed run starts at k = 1 and brakes again within a few minibatches).

May import: Sample Factory, `sf_kickstart.errors`. Nothing kickstart-specific.
"""

from __future__ import annotations

from sample_factory.algo.learning.learner import LearningRateScheduler

from sf_kickstart.errors import UserError

LINEAR_DECAY = "linear_decay"


def decayed_lr(learning_rate: float, env_steps: float, train_for_env_steps: float) -> float:
    """The learning rate after `env_steps` frames of a `train_for_env_steps` budget."""
    if train_for_env_steps <= 0:
        return float(learning_rate)
    return float(learning_rate) * max(0.0, 1.0 - float(env_steps) / float(train_for_env_steps))


BRAKE_STEP = 1.5
BRAKE_MIN = 0.01


def braked(factor: float, kl: float, threshold: float) -> float:
    """The brake's factor after a minibatch of mean KL `kl`."""
    if kl > 2.0 * threshold:
        return max(factor / BRAKE_STEP, BRAKE_MIN)
    if kl < 0.5 * threshold:
        return min(factor * BRAKE_STEP, 1.0)
    return factor


class FrameLinearDecay(LearningRateScheduler):
    """SF's scheduler interface, called after each minibatch; reads the learner's cfg and frame count. Installed for
    `--lr_schedule=linear_decay` and for `--lr_kl_brake=True` (then `decay` follows the schedule)."""

    def __init__(self, learner, decay: bool = True, brake: bool = False):
        self.learner, self.decay, self.brake, self.factor = learner, decay, brake, 1.0

    def invoke_after_each_minibatch(self) -> bool:
        return True

    def current(self) -> float:
        cfg = self.learner.cfg
        base = decayed_lr(cfg.learning_rate, self.learner.env_steps, cfg.train_for_env_steps) if self.decay \
            else float(cfg.learning_rate)
        return base * self.factor

    def update(self, current_lr, recent_kls) -> float:
        if self.brake and recent_kls:
            self.factor = braked(self.factor, float(recent_kls[-1]), float(self.learner.cfg.lr_schedule_kl_threshold))
        return self.current()


def uses_scheduler(cfg) -> bool:
    """Whether a run's learner needs `FrameLinearDecay` instead of SF's scheduler."""
    return cfg.lr_schedule == LINEAR_DECAY or (bool(getattr(cfg, "lr_kl_brake", False)) and cfg.lr_schedule == "constant")


def check_lr_schedule(cfg) -> None:
    """Bad input (exit 2, before any worker starts): the brake with a schedule it does not combine with."""
    if bool(getattr(cfg, "lr_kl_brake", False)) and cfg.lr_schedule not in ("constant", LINEAR_DECAY):
        raise UserError(f"--lr_kl_brake=True works with --lr_schedule=constant or {LINEAR_DECAY}, not "
                        f"{cfg.lr_schedule!r} (SF's kl_adaptive schedules adapt the rate themselves)")


def add_lr_schedule_args(parser) -> None:
    """Add "linear_decay" to SF's `--lr_schedule` choices (its argparse action lists three) and `--lr_kl_brake`."""
    from sample_factory.utils.utils import str2bool

    parser.add_argument("--lr_kl_brake", default=False, type=str2bool,
                        help="slow the learning rate down (factor /1.5, down to 0.01) after each minibatch whose KL to "
                             "the behaviour policy exceeds 2 × --lr_schedule_kl_threshold, back up (×1.5, up to 1) "
                             "below half of it; with --lr_schedule=constant or linear_decay")
    for action in parser._actions:
        if action.dest == "lr_schedule" and action.choices is not None and LINEAR_DECAY not in action.choices:
            action.choices = list(action.choices) + [LINEAR_DECAY]
            action.help = (action.help or "") + f" {LINEAR_DECAY}: linear to 0 at --train_for_env_steps (frames)."


def partial_parse_argv(argv):
    """`argv` for SF's first, partial parse (`parse_sf_args`, before `add_lr_schedule_args` can widen the choices): a
    `linear_decay` value is read as "constant" there; the full parse sees the real one."""
    out, after_flag = [], False
    for arg in argv:
        if arg == f"--lr_schedule={LINEAR_DECAY}" or (after_flag and arg == LINEAR_DECAY):
            arg = "--lr_schedule=constant" if not after_flag else "constant"
        after_flag = arg == "--lr_schedule"
        out.append(arg)
    return out
