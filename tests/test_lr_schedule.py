"""`--lr_schedule=linear_decay` (sf.fixes.lr_schedule): accepted by the command line and presets, the rate is a function
of the learner's frame count (so a resumed run continues the curve) and of the current cfg's learning rate (PBT)."""

import pytest
import torch

from sf_kickstart.sf.fixes.lr_schedule import LINEAR_DECAY, FrameLinearDecay, decayed_lr, partial_parse_argv
from sf_kickstart.sf.setup import parse_args


def test_decayed_lr_by_hand():
    assert decayed_lr(5e-4, 0, 4e6) == pytest.approx(5e-4)
    assert decayed_lr(5e-4, 1e6, 4e6) == pytest.approx(3.75e-4)
    assert decayed_lr(5e-4, 3e6, 4e6) == pytest.approx(1.25e-4)
    assert decayed_lr(5e-4, 4e6, 4e6) == 0.0
    assert decayed_lr(5e-4, 5e6, 4e6) == 0.0  # past the budget (the last batch overshoots): 0, never negative
    assert decayed_lr(5e-4, 123, 0) == pytest.approx(5e-4)


def test_partial_parse_argv_hides_only_the_new_choice():
    assert partial_parse_argv(["--lr_schedule=linear_decay", "--x=1"]) == ["--lr_schedule=constant", "--x=1"]
    assert partial_parse_argv(["--lr_schedule", "linear_decay"]) == ["--lr_schedule", "constant"]
    assert partial_parse_argv(["--lr_schedule=kl_adaptive_epoch"]) == ["--lr_schedule=kl_adaptive_epoch"]
    assert partial_parse_argv(["--experiment", "linear_decay"]) == ["--experiment", "linear_decay"]


def test_command_line_and_preset_accept_linear_decay(tmp_path):
    cfg, _ = parse_args(["--env=minigrid_DoorKey-5x5", "--lr_schedule=linear_decay", f"--train_dir={tmp_path}"])
    assert cfg.lr_schedule == LINEAR_DECAY
    preset = tmp_path / "p.yaml"
    preset.write_text("lr_schedule: linear_decay\n")
    cfg, _ = parse_args(["--env=minigrid_DoorKey-5x5", f"--preset={preset}", f"--train_dir={tmp_path}"])
    assert cfg.lr_schedule == LINEAR_DECAY
    cfg, _ = parse_args(["--env=minigrid_suite", "--preset=minigrid_large_student.yaml", f"--train_dir={tmp_path}"])
    assert cfg.lr_schedule == LINEAR_DECAY  # the large student's preset anneals (issue 20)
    with pytest.raises(SystemExit) as exc:
        parse_args(["--env=minigrid_DoorKey-5x5", "--lr_schedule=cosine"])
    assert exc.value.code == 2


def _learner(tmp_path, *extra):
    from sample_factory.algo.utils.model_sharing import ParameterServer
    from sample_factory.utils.attr_dict import AttrDict

    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf.fixes.learner import FixedLearner

    cfg, _ = parse_args(["--env=minigrid_DoorKey-5x5", "--experiment=unit", f"--train_dir={tmp_path}", "--device=cpu",
                         "--encoder_mlp_layers", "16", "--learning_rate=0.001", "--train_for_env_steps=10000",
                         "--lr_schedule=linear_decay", *extra])
    cfg = AttrDict(vars(cfg))
    versions = torch.zeros([1], dtype=torch.int32)
    learner = FixedLearner(cfg, make_env_info(cfg), versions, 0, ParameterServer(0, versions, False))
    learner.init()
    return learner


def _optimizer_lr(learner):
    return learner.optimizer.param_groups[0]["lr"]


def test_learner_decays_by_frames_continues_after_resume_and_follows_pbt(tmp_path):
    learner = _learner(tmp_path)
    assert isinstance(learner.lr_scheduler, FrameLinearDecay)
    assert _optimizer_lr(learner) == pytest.approx(1e-3)
    learner.env_steps = 2500
    assert learner.lr_scheduler.update(learner.curr_lr, []) == pytest.approx(7.5e-4)
    learner.cfg.learning_rate = 2e-3  # a PBT mutation scales the rest of the curve
    assert learner.lr_scheduler.update(learner.curr_lr, []) == pytest.approx(1.5e-3)

    learner.cfg.learning_rate = 1e-3
    learner.env_steps = 6000
    learner.curr_lr = learner.lr_scheduler.update(learner.curr_lr, [])
    learner.save()
    resumed = _learner(tmp_path)  # same experiment: SF loads the checkpoint (env_steps 6000)
    assert resumed.env_steps == 6000
    assert _optimizer_lr(resumed) == pytest.approx(4e-4)  # where it was, not back at 1e-3 (SF's restarts at 0)


def test_brake_factor_by_hand():
    from sf_kickstart.sf.fixes.lr_schedule import braked

    assert braked(1.0, 0.02, 0.008) == pytest.approx(1 / 1.5)  # above 2 × threshold: slower
    assert braked(1 / 1.5, 0.01, 0.008) == pytest.approx(1 / 1.5)  # between ½ and 2 × threshold: kept
    assert braked(1 / 1.5, 0.001, 0.008) == pytest.approx(1.0)  # below ½ × threshold: back up, never above 1
    assert braked(1.0, 0.001, 0.008) == 1.0
    factor = 1.0
    for _ in range(50):
        factor = braked(factor, 5.0, 0.008)
    assert factor == pytest.approx(0.01)  # the floor


def test_learner_brakes_on_a_large_kl_and_recovers(tmp_path):
    learner = _learner(tmp_path, "--lr_kl_brake=True")
    sched = learner.lr_scheduler
    assert sched.update(learner.curr_lr, [0.001]) == pytest.approx(1e-3)
    assert sched.update(learner.curr_lr, [0.05]) == pytest.approx(1e-3 / 1.5)
    assert sched.update(learner.curr_lr, [0.05]) == pytest.approx(1e-3 / 2.25)
    learner.env_steps = 5000  # the decay and the brake multiply
    assert sched.update(learner.curr_lr, [0.01]) == pytest.approx(0.5e-3 / 2.25)
    assert sched.update(learner.curr_lr, [0.0001]) == pytest.approx(0.5e-3 / 1.5)


def test_brake_with_constant_rate_and_refused_with_kl_adaptive(tmp_path):
    learner = _learner(tmp_path, "--lr_kl_brake=True", "--lr_schedule=constant")
    assert learner.lr_scheduler.update(learner.curr_lr, [0.05]) == pytest.approx(1e-3 / 1.5)
    learner.env_steps = 5000
    assert learner.lr_scheduler.update(learner.curr_lr, [0.01]) == pytest.approx(1e-3 / 1.5)  # no decay
    from sf_kickstart.errors import UserError

    with pytest.raises(UserError, match="--lr_kl_brake=True works with"):
        parse_args(["--env=minigrid_DoorKey-5x5", "--lr_kl_brake=True", "--lr_schedule=kl_adaptive_epoch"])
