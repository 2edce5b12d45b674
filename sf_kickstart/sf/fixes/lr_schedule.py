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

May import: Sample Factory. Nothing kickstart-specific.
"""

from __future__ import annotations

from sample_factory.algo.learning.learner import LearningRateScheduler

LINEAR_DECAY = "linear_decay"


def decayed_lr(learning_rate: float, env_steps: float, train_for_env_steps: float) -> float:
    """The learning rate after `env_steps` frames of a `train_for_env_steps` budget."""
    if train_for_env_steps <= 0:
        return float(learning_rate)
    return float(learning_rate) * max(0.0, 1.0 - float(env_steps) / float(train_for_env_steps))


class FrameLinearDecay(LearningRateScheduler):
    """SF's scheduler interface, called after each minibatch; reads the learner's cfg and frame count."""

    def __init__(self, learner):
        self.learner = learner

    def invoke_after_each_minibatch(self) -> bool:
        return True

    def current(self) -> float:
        cfg = self.learner.cfg
        return decayed_lr(cfg.learning_rate, self.learner.env_steps, cfg.train_for_env_steps)

    def update(self, current_lr, recent_kls) -> float:
        return self.current()


def allow_linear_decay(parser) -> None:
    """Add "linear_decay" to SF's `--lr_schedule` choices (its argparse action lists three)."""
    for action in parser._actions:
        if action.dest == "lr_schedule" and action.choices is not None and LINEAR_DECAY not in action.choices:
            action.choices = list(action.choices) + [LINEAR_DECAY]
            action.help = (action.help or "") + f" {LINEAR_DECAY}: linear to 0 at --train_for_env_steps (frames)."


def partial_parse_argv(argv):
    """`argv` for SF's first, partial parse (`parse_sf_args`, before `allow_linear_decay` can widen the choices): a
    `linear_decay` value is read as "constant" there; the full parse sees the real one."""
    out, after_flag = [], False
    for arg in argv:
        if arg == f"--lr_schedule={LINEAR_DECAY}" or (after_flag and arg == LINEAR_DECAY):
            arg = "--lr_schedule=constant" if not after_flag else "constant"
        after_flag = arg == "--lr_schedule"
        out.append(arg)
    return out
