"""A kickstarting PBT population on Ray Tune: explore, the checkpoint state, bad input, and a real 2-member population
that exploits and continues from the source member's frames and weights with mutated values."""

from __future__ import annotations

import csv
import glob
import json
import os
import random

import pytest
import torch

from sf_kickstart.experiments import latest_checkpoint
from tests.e2e_utils import describe, make_teacher_dir, run_train, scalars


def _cfg(**kw):
    from sample_factory.utils.attr_dict import AttrDict

    base = dict(learning_rate=1e-4, exploration_loss_coeff=0.003, kickstart_lambda=1.0, pbt_mutation_rate=1.0,
                pbt_perturb_min=1.1, pbt_perturb_max=1.5, kickstart_pbt_zero_below=1e-3)
    return AttrDict({**base, **kw})


def _space(names=("learning_rate", "exploration_loss_coeff", "kickstart_lambda", "kickstart_rho"), **kw):
    from sf_kickstart.populations.tune.space import build_space

    return build_space(_cfg(**kw), {"a": 1.0, "b": 0.5}, names, resample_probability=0.0, prior_range=4.0)


def test_explore_perturbs_every_value_by_the_in_process_factors():
    space = _space()
    hp = space.initial(0)
    assert hp == {"learning_rate": 1e-4, "exploration_loss_coeff": 0.003, "kickstart_lambda": 1.0,
                  "kickstart_rho_a": 1.0, "kickstart_rho_b": 0.5}
    rng = random.Random(0)
    for _ in range(50):
        new = space.explore(hp, rng)
        for k, v in hp.items():
            ratio = new[k] / v
            assert 1.1 - 1e-9 <= max(ratio, 1 / ratio) <= 1.5 + 1e-9, (k, v, new[k])


def test_explore_keeps_kickstart_weights_nonnegative_and_floors_to_zero():
    space = _space(kickstart_pbt_zero_below=0.05)
    hp = dict(space.initial(0), kickstart_lambda=0.06, kickstart_rho_a=0.06)
    rng, zero = random.Random(1), False
    for _ in range(100):
        hp = space.explore(hp, rng)
        assert hp["kickstart_lambda"] >= 0 and hp["kickstart_rho_a"] >= 0
        zero |= hp["kickstart_lambda"] == 0.0
    assert zero


def test_resample_and_initial_members_stay_in_the_prior_and_rho_starts_from_the_map():
    from sf_kickstart.populations.tune.space import build_space

    space = build_space(_cfg(), {"a": 1.0}, ["learning_rate", "kickstart_lambda", "kickstart_rho"], 1.0, 4.0)
    rng = random.Random(2)
    for _ in range(50):
        new = space.explore(space.initial(0), rng)
        assert 1e-4 / 4 <= new["learning_rate"] <= 1e-4 * 4 and 0.25 <= new["kickstart_lambda"] <= 4
    m1 = space.initial(1)
    assert m1["learning_rate"] != 1e-4 and m1["kickstart_rho_a"] == 1.0
    assert space.initial(1) == m1  # deterministic per member and seed


def test_mutation_rate_zero_changes_nothing():
    space = _space(pbt_mutation_rate=0.0)
    hp = space.initial(0)
    assert space.explore(hp, random.Random(0)) == hp


def test_unknown_hyperparameters_are_rejected():
    from sf_kickstart.populations.tune.space import HyperparamError, build_space

    with pytest.raises(HyperparamError, match="kickstart_rho_c"):
        _space(names=["kickstart_rho_c"])
    with pytest.raises(HyperparamError, match="need a teacher"):
        build_space(_cfg(), {}, ["kickstart_lambda"], 0.25, 4.0)


def test_checkpoint_state_writes_lr_and_kickstart_weights(tmp_path):
    from sf_kickstart.checkpoints import load_checkpoint
    from sf_kickstart.kickstart.schedules import KickstartSchedule
    from sf_kickstart.populations.tune.state import checkpoint_state
    from sf_kickstart.kickstart.weights import KickstartWeights

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    path = str(tmp_path / "checkpoint_000000003_100.pth")
    weights = KickstartWeights(KickstartSchedule("linear", 1.0, end_frames=400), ["a", "b"], [1.0, 0.5])
    torch.save(dict(train_step=3, env_steps=100, model=model.state_dict(), optimizer=opt.state_dict(), curr_lr=1e-4,
                    kickstart=weights.state_dict(100)), path)
    state = checkpoint_state(path, {"learning_rate": 3e-4, "kickstart_lambda": 0.5, "kickstart_rho_b": 0.0,
                                    "exploration_loss_coeff": 0.01})
    assert state == dict(env_steps=100, train_step=3, learning_rate=3e-4, kickstart_lambda=0.5, kickstart_rho_a=1.0,
                         kickstart_rho_b=0.0)
    ckpt = load_checkpoint(path)
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == 3e-4
    # the learner's own format: what a resumed run restores, α recomputed for the new scale
    assert ckpt["kickstart"] == dict(weights.state_dict(100), alpha_scale=0.5, alpha=0.5 * 0.75, rho={"a": 1.0, "b": 0.0})
    assert checkpoint_state(path) == state
    assert os.listdir(tmp_path) == [os.path.basename(path)]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num_policies=1"], "num_policies >= 2"),
        (["--num_policies=2", "--tune_metric=suite/score"], "never write"),
        (["--num_policies=2", "--tune_hyperparams=learning_rate,gamma"], "unknown hyperparameter 'gamma'"),
        (["--num_policies=2", "--tune_cpus_per_trial=3", "--num_cpus=2"], "asks for 3 CPUs"),
    ],
)
def test_bad_input_fails_before_ray_starts(tmp_path, capsys, args, message):
    from sf_kickstart.populations.tune.cli import main

    argv = ["--env=CartPole-v1", "--experiment=bad", f"--train_dir={tmp_path}", "--train_for_env_steps=1000",
            "--device=cpu", *args]
    assert main(argv) == 2  # in-process: the entry point's own return value (the process test below: its exit code)
    err = capsys.readouterr().err
    assert "sf_kickstart: error:" in err and message in err, err
    assert not (tmp_path / "bad").exists(), "the checks left a population or member dir behind"


@pytest.mark.e2e
def test_bad_input_exits_2_from_the_command_line(tmp_path):
    proc = run_train(["--env=CartPole-v1", "--experiment=bad", f"--train_dir={tmp_path}", "--train_for_env_steps=1000",
                      "--device=cpu", "--num_policies=2", "--teacher=nope"], module="sf_kickstart.tune", timeout=120)
    assert proc.returncode == 2, describe(proc)
    assert "sf_kickstart: error: Teacher 'nope' does not exist" in proc.stderr, describe(proc)
    assert not (tmp_path / "bad").exists(), "the checks left a population or member dir behind"


def _progress(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _weights(path):
    from sf_kickstart.checkpoints import load_checkpoint

    model = load_checkpoint(path)["model"]
    return torch.cat([v.float().flatten() for k, v in model.items() if "normalizer" not in k])  # the parameters


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """One real 2-member population (2 intervals of 2K frames, synchronous PBT: exactly one exploit), shared by the
    tests below: (train_dir, population root, the exploiting member, its source, the exploit's line of Tune's log)."""
    train_dir = tmp_path_factory.mktemp("tune_population")
    teacher = make_teacher_dir(str(train_dir / "teacher"))
    proc = run_train(
        [
            "--env=minigrid_DoorKey-5x5", "--experiment=pop", f"--train_dir={train_dir}", f"--teacher={teacher}",
            # 2K frames: each member's first interval ends episodes (DoorKey-5x5: at most 250 steps, 4 envs) long
            # before it stops, so both write suite/score and are ranked (an interval without a score never exploits)
            "--num_policies=2", "--pbt_period_env_steps=2000", "--train_for_env_steps=4000",
            "--pbt_start_mutation=0", "--pbt_replace_fraction=0.5", "--pbt_mutation_rate=1.0",
            "--tune_resample_probability=0", "--tune_synch=True", "--num_cpus=2", "--tune_cpus_per_trial=1",
            "--num_workers=1", "--num_envs_per_worker=4", "--batch_size=256", "--rollout=32", "--recurrence=32",
            "--encoder_mlp_layers", "32", "--rnn_size=32", "--device=cpu", "--decorrelate_experience_max_seconds=0",
            "--experiment_summaries_interval=1", "--seed=1",
        ],
        module="sf_kickstart.tune",
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    root = train_dir / "pop"
    assert json.loads((root / "tune_population.json").read_text())["status"] == "finished"
    lines = [json.loads(x) for x in (root / "pbt_global.txt").read_text().splitlines() if x.strip()]
    assert len(lines) == 1, lines  # one exploit, after the first interval (never at a member's last result)
    member, source = int(lines[0][0].split("_")[0]), int(lines[0][1].split("_")[0])
    assert member != source
    return train_dir, root, member, source, lines[0]


def _donor_frames(root, source):
    return int(_progress(root / f"trial_{source:02d}" / "progress.csv")[0]["env_steps"])


def _tune_checkpoint(root, trial: int, frames: int) -> str:
    """The checkpoint a trial reported to Tune at `frames` env frames. Found by frames, not by Tune's dir index: a
    trial restored from another's checkpoint numbers its reports from checkpoint_000000 again, so that dir can hold
    the first interval's checkpoint and a later one."""
    from sf_kickstart.experiments import checkpoint_frames

    found = [p for p in glob.glob(str(root / f"trial_{trial:02d}" / "checkpoint_*" / "checkpoint_*.pth"))
             if checkpoint_frames(p) == frames]
    assert len(found) == 1, (trial, frames, found)
    return found[0]


@pytest.mark.e2e
def test_population_exploits_and_continues_from_the_source(population):
    _, root, member, source, line = population
    old_hp, new_hp = line[4]["hp"], line[5]["hp"]
    assert set(new_hp) == {"learning_rate", "exploration_loss_coeff", "kickstart_lambda", "kickstart_rho_teacher"}
    assert all(new_hp[k] != old_hp[k] for k in new_hp), (old_hp, new_hp)  # mutation rate 1: every value explored

    rows = _progress(root / f"trial_{member:02d}" / "progress.csv")
    assert [int(r["started_from"]) for r in rows] == [member, source]
    donor_frames = _donor_frames(root, source)
    # the member's second interval started from the source's checkpoint: its frames ...
    assert int(rows[1]["env_steps"]) - int(rows[1]["interval_frames"]) == donor_frames
    log = (root / f"member_{member:02d}" / "sf_log.txt").read_text()
    assert f"self.env_steps={donor_frames}" in log.split("Saving configuration to")[-1]
    # ... and its weights: training moved them a little from the source's, far less than from its own (another seed)
    donor = _weights(_tune_checkpoint(root, source, donor_frames))
    own = _weights(_tune_checkpoint(root, member, int(rows[0]["env_steps"])))  # its own first interval, before the exploit
    final = _weights(latest_checkpoint(str(root / f"member_{member:02d}")))
    assert (final - donor).norm() < 0.5 * (final - own).norm()


@pytest.mark.e2e
def test_the_member_trains_with_its_mutated_values_after_the_exploit(population):
    from sf_kickstart.populations.tune.state import checkpoint_state

    _, root, member, source, line = population
    new_hp, donor_frames = line[5]["hp"], _donor_frames(root, source)
    exp = str(root / f"member_{member:02d}")
    final_state = checkpoint_state(latest_checkpoint(exp))
    assert final_state["learning_rate"] == pytest.approx(new_hp["learning_rate"])
    assert final_state["kickstart_lambda"] == pytest.approx(new_hp["kickstart_lambda"])
    assert final_state["kickstart_rho_teacher"] == pytest.approx(new_hp["kickstart_rho_teacher"])
    after = [v for step, v in scalars(exp, "kickstart/alpha") if step > donor_frames]
    assert after and all(v == pytest.approx(new_hp["kickstart_lambda"], rel=1e-5) for v in after)
    lrs = [v for step, v in scalars(exp, "train/lr") if step > donor_frames]
    assert lrs and all(v == pytest.approx(new_hp["learning_rate"], rel=1e-5) for v in lrs)
    cfg = json.loads((root / f"member_{member:02d}" / "config.json").read_text())
    assert cfg["exploration_loss_coeff"] == pytest.approx(new_hp["exploration_loss_coeff"])


@pytest.mark.e2e
def test_the_report_reads_the_population_as_one_pbt_experiment(population):
    from sf_kickstart.report import exploit_frames, load_experiments

    train_dir, root, member, source, _ = population
    (exp,) = load_experiments([str(train_dir)])  # the teacher has no .summary, the members are not experiments
    assert exp.pbt and sorted(exp.policies) == [0, 1] and exp.status == "finished"
    assert exploit_frames(exp) == [(float(_donor_frames(root, source)), member, source)]


@pytest.mark.e2e
def test_a_crashed_member_is_retried_from_its_last_checkpoint_and_the_population_goes_on(tmp_path, monkeypatch):
    # the first run of a member's second interval crashes (its env cannot be created), once; no exploits
    monkeypatch.setenv("SF_KICKSTART_TEST_CRASH", f"{tmp_path / 'crashed'}|--train_for_env_steps=2000")
    proc = run_train(
        [
            "--env=tests.failing_env:SfKickstartCrashOnce-v0", "--experiment=pop", f"--train_dir={tmp_path}",
            "--num_policies=2", "--pbt_period_env_steps=1000", "--train_for_env_steps=2000",
            "--pbt_start_mutation=100000", "--num_cpus=2", "--tune_cpus_per_trial=1",
            "--num_workers=1", "--num_envs_per_worker=4", "--worker_num_splits=1", "--batch_size=256",
            "--rollout=32", "--use_rnn=False", "--device=cpu", "--decorrelate_experience_max_seconds=0",
            "--experiment_summaries_interval=1", "--seed=1",
        ],
        module="sf_kickstart.tune",
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    root = tmp_path / "pop"
    crashed = [m for m in (0, 1) if "crashing once" in (root / f"member_{m:02d}" / "tune_train.log").read_text()]
    assert len(crashed) == 1, "exactly one run crashed"
    for m in (0, 1):
        rows = _progress(root / f"trial_{m:02d}" / "progress.csv")
        assert int(rows[-1]["env_steps"]) >= 2000, f"member {m} did not finish its budget"
        assert all(int(r["started_from"]) == m for r in rows)
    rows = _progress(root / f"trial_{crashed[0]:02d}" / "progress.csv")
    first, last = int(rows[0]["env_steps"]), rows[-1]
    assert int(last["env_steps"]) - int(last["interval_frames"]) == first  # the retry resumed its first checkpoint
