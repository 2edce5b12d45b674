"""Issue 19, item 4: bad input, as fuzz. Every bad checkpoint of `tests.bad_files.BAD_CHECKPOINTS` (empty,
truncated, random bytes, a list, a dict without "model", three pickle payloads) as a teacher's checkpoint, a resumed
student's checkpoint, a Hub teacher's checkpoint and the checkpoint of the experiment evaluate plays; every bad
config.json of `BAD_CONFIGS` (not JSON, not an object, an unknown env) as a teacher's, a Hub teacher's, a resumed
student's and an evaluated experiment's. Each gives one clear error (one `sf_kickstart: error:` line, no traceback),
exit code 2, no code run (a payload's marker file is absent afterwards) and no file of the user's changed (every
file under the test's directory has the same bytes afterwards; new files only in the Hub download cache).

The matrix runs in this process through the entry points' `main` (fast lane); `test_e2e_*` run a few of them as
real `python -m sf_kickstart.*` processes. `CASES` counts them (README's Reliability section quotes the count).
"""

from __future__ import annotations

import glob
import os
import shutil

import pytest

from tests.bad_files import BAD_CHECKPOINTS, BAD_CONFIGS, PAYLOADS, assert_untouched, tree_hashes, write_bad_checkpoint

ROLES = ("teacher", "student_resume", "hub_teacher", "evaluated")
CONFIG_ROLES = ("teacher", "hub_teacher", "student_resume", "evaluated")
# a resumed student's env is always the command line's --env (SF's required flag overrides config.json's)
CONFIG_CASES = [(role, kind) for role in CONFIG_ROLES for kind in BAD_CONFIGS
                if not (role == "student_resume" and kind == "unknown_env")]
CHECKPOINT_CASES = [(role, kind) for role in ROLES for kind in BAD_CHECKPOINTS]
E2E_CASES = [("train", "teacher"), ("train", "student_resume"), ("train", "hub_teacher"), ("evaluate", "evaluated"),
             ("enjoy", "evaluated")]
CASES = len(CHECKPOINT_CASES) + len(CONFIG_CASES) + len(E2E_CASES)  # 32 + 11 + 5 = 48


@pytest.fixture(scope="module")
def good_teacher(tmp_path_factory):
    from tests.e2e_utils import make_teacher_dir

    return make_teacher_dir(str(tmp_path_factory.mktemp("good") / "good_teacher"))


class World:
    """One test's user directory (`root`): a train_dir, a teacher, a student, the Hub stand-in's repositories."""

    def __init__(self, root, good_teacher):
        self.root = str(root)
        self.train_dir = os.path.join(self.root, "train_dir")
        self.remote = os.path.join(self.root, "remote_hub")
        self.marker = os.path.join(self.root, "MARKER")
        self.good = good_teacher
        os.makedirs(self.train_dir)
        with open(glob.glob(os.path.join(good_teacher, "checkpoint_p0", "*.pth"))[0], "rb") as f:
            self.good_bytes = f.read()

    def experiment(self, where: str) -> str:
        """A copy of the good teacher at `where` (relative to root)."""
        path = os.path.join(self.root, where)
        shutil.copytree(self.good, path)
        return path

    def argv(self, role: str):
        """The command line that reads the bad file in `role`, and which main runs it."""
        student = ["--env=minigrid_suite", "--experiment=student", f"--train_dir={self.train_dir}",
                   "--encoder_mlp_layers", "32", "--device=cpu"]
        if role == "teacher":
            return "train", student + [f"--teacher={os.path.join(self.root, 'teacher')}"]
        if role == "hub_teacher":
            return "train", student + ["--teacher=hf://someone/teacher"]
        if role == "student_resume":
            return "train", student
        return "evaluate", [os.path.join(self.root, "teacher"), "--episodes=1", "--no_teachers", "--no_progress"]

    def place(self, role: str) -> str:
        """The experiment dir that holds the bad file in `role` (a copy of the good teacher)."""
        if role == "hub_teacher":
            return self.experiment(os.path.join("remote_hub", "someone", "teacher"))
        if role == "student_resume":
            return self.experiment(os.path.join("train_dir", "student"))
        return self.experiment("teacher")

    def bad_checkpoint(self, role: str, kind: str) -> str:
        exp = self.place(role)
        (path,) = glob.glob(os.path.join(exp, "checkpoint_p0", "*.pth"))
        if role == "student_resume":
            os.remove(os.path.join(exp, "config.json"))  # a student whose first run wrote only a checkpoint
        return write_bad_checkpoint(path, kind, self.good_bytes, self.marker)

    def bad_config(self, role: str, kind: str) -> str:
        text, fragment = BAD_CONFIGS[kind]
        with open(os.path.join(self.place(role), "config.json"), "w") as f:
            f.write(text)
        return fragment


@pytest.fixture
def world(tmp_path, monkeypatch, good_teacher):
    """A fresh user directory; the Hub stand-in in this process; sf.setup's env probe in this process."""
    from sf_kickstart.envprobe import make_env_info
    from sf_kickstart.sf import setup
    from tests.hub_standin import sitecustomize as standin

    w = World(tmp_path, good_teacher)
    monkeypatch.setenv("SF_KICKSTART_FAKE_HUB", w.remote)
    standin.install(monkeypatch.setattr)
    monkeypatch.setattr(setup, "probe_env_info", make_env_info)
    return w


def in_process(command: str, argv) -> int:
    from sf_kickstart import train
    from sf_kickstart.agents import evaluate

    return dict(train=train.main, evaluate=evaluate.main)[command](argv)


def hub_download(rel: str) -> bool:
    """A new file may appear only in the Hub download cache (train_dir/hub/...) and the stand-in's log."""
    in_cache = rel.startswith(os.path.join("train_dir", "hub") + os.sep)
    return in_cache or rel == os.path.join("remote_hub", "downloads.log")


def assert_one_clear_error(rc: int, err: str, *fragments) -> str:
    lines = [line for line in err.splitlines() if line.startswith("sf_kickstart: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, f"rc={rc}\n{err[-3000:]}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    return lines[0]


@pytest.mark.parametrize("role, kind", CHECKPOINT_CASES, ids=[f"{r}-{k}" for r, k in CHECKPOINT_CASES])
def test_bad_checkpoint(world, capsys, role, kind):
    fragment = world.bad_checkpoint(role, kind)
    before = tree_hashes(world.root)
    command, argv = world.argv(role)
    line = assert_one_clear_error(in_process(command, argv), capsys.readouterr().err, fragment)
    assert not os.path.exists(world.marker), "the checkpoint's code ran"
    if kind in PAYLOADS and "outside the types" in line:
        assert "--trust_checkpoint" in line
    assert_untouched(world.root, before, hub_download)


@pytest.mark.parametrize("role, kind", CONFIG_CASES, ids=[f"{r}-{k}" for r, k in CONFIG_CASES])
def test_bad_config(world, capsys, role, kind):
    fragment = world.bad_config(role, kind)
    before = tree_hashes(world.root)
    command, argv = world.argv(role)
    assert_one_clear_error(in_process(command, argv), capsys.readouterr().err, fragment)
    assert_untouched(world.root, before, hub_download)


def test_the_matrix_is_what_the_readme_counts():
    assert (len(CHECKPOINT_CASES), len(CONFIG_CASES), len(E2E_CASES), CASES) == (32, 11, 5, 48)
    assert len(PAYLOADS) == 3


@pytest.mark.e2e
@pytest.mark.parametrize("command, role", E2E_CASES, ids=[f"{c}-{r}" for c, r in E2E_CASES])
def test_e2e_pickle_payload(tmp_path, good_teacher, command, role):
    """A real `python -m sf_kickstart.<command>` on a checkpoint carrying code: one error, exit 2, nothing ran."""
    from sf_kickstart.processes import python_path, run_python
    from tests.e2e_utils import REPO

    w = World(tmp_path, good_teacher)
    w.bad_checkpoint(role, "payload_torch_zip")
    before = tree_hashes(w.root)
    _, argv = w.argv(role)
    if command == "enjoy":
        argv = [f"--experiment={os.path.join(w.root, 'teacher')}", "--no_render", "--max_num_frames=10", "--device=cpu"]
    standin = os.path.join(REPO, "tests", "hub_standin")
    env = dict(SF_KICKSTART_FAKE_HUB=w.remote, PYTHONPATH=python_path(standin))
    proc = run_python(["-m", f"sf_kickstart.{command}", *argv], timeout=300, extra_env=env)
    assert_one_clear_error(proc.returncode, proc.stderr, "builtins.exec", "--trust_checkpoint")
    assert "Starting process" not in proc.stdout + proc.stderr and not os.path.exists(w.marker)
    assert_untouched(w.root, before, hub_download)
