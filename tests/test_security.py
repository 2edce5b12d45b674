"""Issue 19, items 1 and 2: untrusted checkpoints never run code; teachers are pinned and verified.

The one loader (`sf_kickstart.checkpoints`) loads with weights_only=True and exactly the allowlist Sample Factory's
and our checkpoints need; anything else is refused unless `--trust_checkpoint` allows it (never a Hub download by
`True`). `hf://user/repo@revision` downloads that revision, the downloaded commit is recorded, each teacher's identity
goes into config.json and the student's checkpoints, and a resumed run whose teacher changed stops with one error.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil

import numpy as np
import pytest
import torch

from sf_kickstart import checkpoints, hub, provenance
from sf_kickstart.checkpoints import (
    SAFE_GLOBALS,
    CheckpointLoadError,
    TrustPolicy,
    UntrustedCheckpointError,
    file_sha256,
    load_checkpoint,
    load_verified,
)
from sf_kickstart.errors import ExperimentError, UserError
from sf_kickstart.provenance import ALLOW_FLAG, IDENTITY_KEY, TeacherChangedError
from sf_kickstart.sources import ZOO_DIR
from tests.bad_files import Payload, torch_bytes
from tests.hub_standin import sitecustomize as standin

ZOO_TEACHER = os.path.join(ZOO_DIR, "minigrid_suite_small")
ZOO_CHECKPOINT = sorted(glob.glob(os.path.join(ZOO_TEACHER, "checkpoint_p0", "checkpoint_*.pth")))[-1]
SAFE_NAMES = {f"{g.__module__}.{g.__name__}" for g in SAFE_GLOBALS}


def needed_globals(path: str) -> set:
    """What the file needs beyond torch's own weights_only defaults (read statically: nothing is unpickled)."""
    return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))


def student_argv(train_dir, *extra):
    return ["--env=minigrid_suite", "--experiment=student", f"--train_dir={train_dir}", "--encoder_mlp_layers", "32",
            "--device=cpu", *extra]


@pytest.fixture
def fast_prepare(monkeypatch):
    """sf.setup.prepare with the env probe in this process (the probe in a spawned process is not what is tested)."""
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf import setup

    monkeypatch.setattr(setup, "probe_env_info", make_env_info)
    return setup.prepare


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """The Hub stand-in (tests/hub_standin) in this process: repositories under the returned directory."""
    root = tmp_path / "remote_hub"
    root.mkdir()
    monkeypatch.setenv("SF_KICKSTART_FAKE_HUB", str(root))
    standin.install(monkeypatch.setattr)
    return root


@pytest.fixture
def teacher(tmp_path):
    from tests.e2e_utils import make_teacher_dir

    return make_teacher_dir(str(tmp_path / "teacher"))


def _write(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


# ------------------------------------------------------------------------------------------------ the allowlist


def test_plain_sample_factory_checkpoint_needs_exactly_the_allowlist_and_loads_without_a_flag():
    """The shipped zoo teacher was written by plain Sample Factory: its numpy best_performance needs the allowlist
    (torch's defaults alone refuse it), and the allowlist is enough."""
    assert needed_globals(ZOO_CHECKPOINT) <= SAFE_NAMES and needed_globals(ZOO_CHECKPOINT)
    with pytest.raises(Exception, match="weights_only"):
        torch.load(ZOO_CHECKPOINT, weights_only=True)
    ckpt = load_checkpoint(ZOO_CHECKPOINT)
    assert isinstance(ckpt["best_performance"], np.float64) and "model" in ckpt


def test_what_our_learner_writes_needs_only_the_allowlist(tmp_path):
    """A checkpoint as KickstartLearner writes it: SF's entries (best_performance as SF's runner computes it, np.mean
    of episode stats; a real Adam state), our kickstart weights and the teacher identity entry."""
    from sf_kickstart.kickstart.schedules import KickstartSchedule
    from sf_kickstart.kickstart.weights import CHECKPOINT_KEY, KickstartWeights
    from sf_kickstart.sf.setup import parse_args
    from sf_kickstart.teachers import TeacherSpec
    from tests.e2e_utils import make_teacher_dir

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    cfg, _ = parse_args(student_argv(tmp_path))
    specs = [TeacherSpec(path=make_teacher_dir(str(tmp_path / "t")), tasks=["DoorKey-5x5"])]
    weights = KickstartWeights(KickstartSchedule.from_cfg(cfg), [s.name for s in specs], [s.rho for s in specs])
    identity = [provenance.teacher_identity("t", specs[0].path, ZOO_CHECKPOINT, "0" * 64)]
    for best in (np.mean([0.5, 0.75]), np.mean(np.array([0.5, 0.75], dtype=np.float32)), -1e9):
        ckpt = dict(train_step=3, env_steps=768, best_performance=best, model=model.state_dict(),
                    optimizer=opt.state_dict(), curr_lr=1e-4, **{CHECKPOINT_KEY: weights.state_dict(768.0),
                                                                   IDENTITY_KEY: identity})
        path = _write(str(tmp_path / "ours.pth"), torch_bytes(ckpt))
        assert needed_globals(path) <= SAFE_NAMES
        assert load_checkpoint(path)[IDENTITY_KEY] == identity


# ------------------------------------------------------------------------------------------------ refusals


def test_a_pickle_payload_is_refused_unread_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    path = _write(str(tmp_path / "ckpt" / "evil.pth"), torch_bytes(dict(model={}, extra=Payload(marker))))
    with pytest.raises(UntrustedCheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert path in message and "builtins.exec" in message and "--trust_checkpoint=True" in message
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: the same file, loaded the unsafe way, does run its code
    assert marker.exists()


def test_trust_checkpoint_true_allows_local_files_never_hub_downloads(tmp_path):
    """--trust_checkpoint=True loads a local file that needs another type (weights_only=False); a file in a Hub
    download needs --trust_checkpoint=hf://user/repo, named in its error."""
    namespace = dict(model={}, stats=argparse.Namespace(a=1))  # a harmless type outside the allowlist (an old cfg)
    local = _write(str(tmp_path / "mine" / "old.pth"), torch_bytes(namespace))
    with pytest.raises(UntrustedCheckpointError, match="argparse.Namespace"):
        load_checkpoint(local)
    assert load_checkpoint(local, trust="True")["stats"].a == 1

    hub_dir = tmp_path / "train_dir" / "hub" / "someone" / "teacher"
    (hub_dir / "checkpoint_p0").mkdir(parents=True)
    (hub_dir / hub.DOWNLOADED).write_text(json.dumps(dict(uri="hf://someone/teacher", repo_id="someone/teacher")))
    remote = _write(str(hub_dir / "checkpoint_p0" / "c.pth"), torch_bytes(namespace))
    with pytest.raises(UntrustedCheckpointError) as info:
        load_checkpoint(remote, trust="True")
    assert "--trust_checkpoint=hf://someone/teacher" in str(info.value) and "Hugging Face Hub" in str(info.value)
    assert load_checkpoint(remote, trust="hf://someone/teacher")["stats"].a == 1
    assert load_checkpoint(remote, trust="False,hf://someone/teacher@main,hf://someone/teacher")["model"] == {}
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(remote, trust="hf://someone/other")


def test_trust_policy_values():
    assert TrustPolicy.parse(None) == TrustPolicy.parse("False") == TrustPolicy.parse(False) == TrustPolicy()
    both = TrustPolicy.parse("True,hf://a/b")
    assert both.local and both.allows(None) and both.allows(("a/b", None)) and not both.allows(("a/c", None))
    pinned = TrustPolicy.parse("hf://a/b@v1")
    assert pinned.allows(("a/b", "v1")) and not pinned.allows(("a/b", None)) and not pinned.allows(None)
    with pytest.raises(ValueError, match="maybe"):
        TrustPolicy.parse("maybe")


def test_trust_checkpoint_is_a_flag_of_train_evaluate_and_enjoy(tmp_path):
    from sf_kickstart.agents import evaluate
    from sf_kickstart.sf.setup import parse_args

    cfg, _ = parse_args(student_argv(tmp_path, "--trust_checkpoint=hf://me/t"))
    assert cfg.trust_checkpoint == "hf://me/t" and cfg.kickstart_allow_teacher_change is False
    with pytest.raises(SystemExit) as exit_info:
        parse_args(student_argv(tmp_path, "--trust_checkpoint=maybe"))
    assert exit_info.value.code == 2
    parser = argparse.ArgumentParser()
    evaluate.add_args(parser)
    assert parser.parse_args(["--trust_checkpoint=True"]).trust_checkpoint == "True"
    cfg, _ = parse_args(["--env=minigrid_suite", "--experiment=x", "--trust_checkpoint=True"], evaluation=True)
    assert cfg.trust_checkpoint == "True"  # sf_kickstart.enjoy parses its flags so


def test_a_checkpoint_whose_bytes_changed_after_verification_is_refused(tmp_path):
    path = _write(str(tmp_path / "c.pth"), torch_bytes(dict(model={})))
    _, sha = load_verified(path)
    assert sha == file_sha256(path)
    _write(path, torch_bytes(dict(model={}, train_step=2)))
    with pytest.raises(CheckpointLoadError, match="changed since it was verified"):
        load_verified(path, sha256=sha)


def test_sf_learner_and_enjoy_load_through_the_safe_loader(tmp_path):
    """FixedLearner.load_checkpoint (SF's learner on resume, SF's enjoy through `trusting`) refuses what needs
    trust, naming the flag, and never starts from random weights."""
    from sf_kickstart.sf.fixes.learner import REFUSE_RANDOM_WEIGHTS, FixedLearner

    marker = tmp_path / "MARKER"
    evil = _write(str(tmp_path / "checkpoint_p0" / "checkpoint_000000001_1.pth"),
                  torch_bytes(dict(model={}, extra=Payload(marker))))
    with pytest.raises(UntrustedCheckpointError, match="--trust_checkpoint") as info:
        FixedLearner.load_checkpoint([evil], "cpu")
    assert REFUSE_RANDOM_WEIGHTS in str(info.value) and not marker.exists()
    namespace = _write(str(tmp_path / "c.pth"), torch_bytes(dict(model={}, stats=argparse.Namespace())))
    assert FixedLearner.trusting("True").load_checkpoint([namespace], "cpu")["model"] == {}
    with pytest.raises(UntrustedCheckpointError):
        FixedLearner.trusting("False").load_checkpoint([namespace], "cpu")
    assert FixedLearner.load_checkpoint([ZOO_CHECKPOINT], "cpu")["env_steps"] > 0


# ------------------------------------------------------------------------------------------------ Hub revisions


def _publish(root, repo_id, src, revision=None):
    target = os.path.join(str(root), *repo_id.split("/")) + (f"@{revision}" if revision else "")
    shutil.copytree(src, target)
    return target


def test_hub_revision_downloads_that_revision_and_records_its_commit(tmp_path, fake_hub, teacher):
    main_repo = _publish(fake_hub, "someone/t", teacher)
    v1 = _publish(fake_hub, "someone/t", ZOO_TEACHER, revision="v1")
    train_dir = str(tmp_path / "train_dir")
    pinned = hub.fetch("hf://someone/t@v1", train_dir)
    assert pinned == os.path.join(train_dir, "hub", "someone", "t@v1")
    (got,), (published,) = glob.glob(f"{pinned}/checkpoint_p0/*.pth"), glob.glob(f"{v1}/checkpoint_p0/*.pth")
    assert file_sha256(got) == file_sha256(published)
    assert hub.download_record(pinned) == dict(uri="hf://someone/t@v1", repo_id="someone/t", revision="v1",
                                               commit=standin.commit_of("someone/t", "v1"))
    latest = hub.fetch("hf://someone/t", train_dir)
    record = hub.download_record(latest)
    assert record["revision"] is None and record["commit"] == standin.commit_of("someone/t") != record["commit"][::-1]
    assert os.listdir(os.path.join(latest, "checkpoint_p0")) == os.listdir(os.path.join(main_repo, "checkpoint_p0"))
    assert hub.hub_origin(glob.glob(f"{pinned}/checkpoint_p0/*.pth")[0]) == ("someone/t", "v1")
    with pytest.raises(ExperimentError, match="hf://someone/t@nope.*could not be downloaded.*RevisionNotFound"):
        hub.fetch("hf://someone/t@nope", train_dir)
    with pytest.raises(ExperimentError, match="hf://<user>/<repo>"):
        hub.fetch("hf://someone/t@bad revision", train_dir)


def test_teacher_identity_is_recorded_in_the_config(tmp_path, fast_prepare, fake_hub):
    _publish(fake_hub, "someone/t", ZOO_TEACHER, revision="v1")
    _publish(fake_hub, "someone/t", ZOO_TEACHER)
    cfg, layout, _ = fast_prepare(student_argv(tmp_path, "--teacher=hf://someone/t@v1"))
    (identity,) = cfg[IDENTITY_KEY]
    local = os.path.join(str(tmp_path), "hub", "someone", "t@v1")
    assert identity == dict(source="hf://someone/t@v1", path=local,
                            checkpoint=os.path.relpath(ZOO_CHECKPOINT, ZOO_TEACHER),
                            sha256=file_sha256(ZOO_CHECKPOINT), revision="v1",
                            commit=standin.commit_of("someone/t", "v1"))
    assert layout.specs[0].sha256 == identity["sha256"]  # the workers load exactly the verified bytes
    assert layout.specs[0].checkpoint == os.path.join(local, identity["checkpoint"])


# ------------------------------------------------------------------------------------------------ resume


def _save_config(cfg, train_dir):
    from sample_factory.cfg.arguments import cfg_dict

    exp = os.path.join(str(train_dir), "student")
    os.makedirs(exp, exist_ok=True)
    with open(os.path.join(exp, "config.json"), "w") as f:
        json.dump(cfg_dict(cfg), f)  # what SF's runner writes at start


def _retrain(teacher_dir: str) -> None:
    path = glob.glob(os.path.join(teacher_dir, "checkpoint_p0", "*.pth"))[0]
    ckpt = load_checkpoint(path)
    first = next(iter(ckpt["model"]))
    ckpt["model"][first] = ckpt["model"][first] + 0.01
    torch.save(ckpt, path)


def test_resume_with_a_changed_teacher_is_one_error_unless_allowed(tmp_path, fast_prepare, teacher):
    cfg, _, _ = fast_prepare(student_argv(tmp_path, f"--teacher={teacher}"))
    before = cfg[IDENTITY_KEY][0]
    assert before["source"] == teacher and before["revision"] is None and before["commit"] is None
    _save_config(cfg, tmp_path)
    again, _, _ = fast_prepare(student_argv(tmp_path))  # resumed: the teacher from config.json, unchanged
    assert again[IDENTITY_KEY] == [before]

    _retrain(teacher)
    with pytest.raises(TeacherChangedError) as info:
        fast_prepare(student_argv(tmp_path))
    message = str(info.value)
    assert teacher in message and before["sha256"][:12] in message and ALLOW_FLAG in message
    assert isinstance(info.value, UserError)
    allowed, _, _ = fast_prepare(student_argv(tmp_path, f"{ALLOW_FLAG}=True"))
    assert allowed[IDENTITY_KEY][0]["sha256"] == file_sha256(glob.glob(f"{teacher}/checkpoint_p0/*.pth")[0])
    assert allowed[IDENTITY_KEY][0]["sha256"] != before["sha256"]


def test_trust_and_allow_change_are_never_inherited_from_the_saved_config(tmp_path, fast_prepare, teacher):
    cfg, _, _ = fast_prepare(student_argv(tmp_path, f"--teacher={teacher}", "--trust_checkpoint=True",
                                          f"{ALLOW_FLAG}=True"))
    _save_config(cfg, tmp_path)
    _retrain(teacher)
    with pytest.raises(TeacherChangedError):
        fast_prepare(student_argv(tmp_path))
    resumed, _, _ = fast_prepare(student_argv(tmp_path, f"{ALLOW_FLAG}=True"))
    assert resumed.trust_checkpoint == "False"


# ------------------------------------------------------------------------------------------------ listings


def test_zoo_listing_shows_each_teachers_checkpoint_hash(tmp_path, capsys):
    from sf_kickstart.agents import zoo

    assert zoo.main([f"--train_dir={tmp_path}"]) == 0
    assert file_sha256(ZOO_CHECKPOINT)[:12] in capsys.readouterr().out


def test_evaluate_report_shows_the_teachers_hash(tmp_path, capsys):
    from sf_kickstart.agents import evaluate

    student, teacher_copy = tmp_path / "student", tmp_path / "teacher"
    for d in (student, teacher_copy):
        shutil.copytree(ZOO_TEACHER, d, ignore=shutil.ignore_patterns("evaluation"))
    _retrain(str(teacher_copy))
    argv = [str(student), f"--teacher={teacher_copy}", "--episodes=1", "--envs_per_task=1", "--no_progress"]
    assert evaluate.main(argv) == 0
    report = json.loads((student / "evaluation" / "report_greedy.json").read_text())
    sha = file_sha256(glob.glob(f"{teacher_copy}/checkpoint_p0/*.pth")[0])
    assert report["teachers"][0]["sha256"] == sha and report["student"]["sha256"] == file_sha256(ZOO_CHECKPOINT)
    assert f"`{sha[:12]}`" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ real runs


@pytest.mark.e2e
def test_real_checkpoints_of_plain_sf_and_of_a_kickstarted_run_load_safely_and_pin_the_teacher(tmp_path):
    """Plain SF writes a teacher, sf_kickstart trains a student on it (latest and best checkpoints of both load with
    weights_only=True and no flag, and need nothing outside the allowlist); the student's config.json and checkpoint
    hold the teacher's identity; after the teacher file changes, resuming is one error before any worker starts."""
    from tests.e2e_utils import FAST, describe, run_plain_sample_factory, run_train

    common = [f"--train_dir={tmp_path}", "--train_for_env_steps=6000", "--save_best_every_sec=1",
              "--save_best_after=0", "--stats_avg=2", "--encoder_mlp_layers", "64", "--rnn_size=64", *FAST]
    plain = run_plain_sample_factory(["--env=minigrid_DoorKey-5x5", "--experiment=teacher", *common])
    assert plain.returncode == 0, describe(plain)
    teacher = str(tmp_path / "teacher")
    student_args = ["--env=minigrid_DoorKey-5x5", "--experiment=student", f"--teacher={teacher}", *common]
    ours = run_train(student_args)
    assert ours.returncode == 0, describe(ours)
    files = glob.glob(f"{tmp_path}/*/checkpoint_p0/*.pth")
    assert any("/teacher/" in f and "best_" in f for f in files) and any("/student/" in f for f in files)
    for f in files:
        assert needed_globals(f) <= SAFE_NAMES, f
        load_checkpoint(f)
    (identity,) = json.loads((tmp_path / "student" / "config.json").read_text())[IDENTITY_KEY]
    teacher_file = os.path.join(teacher, identity["checkpoint"])
    assert identity["source"] == teacher and identity["sha256"] == file_sha256(teacher_file)
    student_ckpt = load_checkpoint(sorted(glob.glob(f"{tmp_path}/student/checkpoint_p0/checkpoint_*.pth"))[-1])
    assert student_ckpt[IDENTITY_KEY] == [identity]

    _write(teacher_file, torch_bytes(dict(load_checkpoint(teacher_file), train_step=-1)))  # the teacher changed
    resumed = run_train(student_args + ["--train_for_env_steps=8000"])
    assert resumed.returncode == 2, describe(resumed)
    assert ALLOW_FLAG in resumed.stderr and identity["sha256"][:12] in resumed.stderr
    assert "Starting process" not in resumed.stdout + resumed.stderr
