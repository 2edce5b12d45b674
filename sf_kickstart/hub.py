"""Teachers from the Hugging Face Hub: `--teacher=hf://user/repo` (also as a path in a `--teachers` map).

A Sample Factory model repository is what SF's `push_to_hub` uploads (`python -m sf_kickstart.enjoy ... --push_to_hub
--hf_repository=user/repo`, or SF's own enjoy scripts): the experiment directory itself at the repository root,
`config.json`, `checkpoint_p<policy>/checkpoint_*.pth` (and `best_*.pth`), `README.md` (model card), `replay.mp4`,
`.summary/`, `sf_log.txt`. The files a teacher needs (config, checkpoints, card, our evaluation cache) are downloaded
once with `huggingface_hub.snapshot_download` into `<train_dir>/hub/<user>/<repo>/`; afterwards that directory is
used as it is (a marker file says the download completed), offline too.

`hf://user/repo@REVISION` (a commit, branch or tag) downloads that revision, into
`<train_dir>/hub/<user>/<repo>@REVISION/`. The marker (`DOWNLOADED`, JSON) records the URI, the revision asked for
and the commit that was downloaded (from the `.cache/huggingface/download/*.metadata` files snapshot_download writes
into the directory), so a teacher named without a revision is still pinned to what was used (`download_record`);
`hub_origin` tells the checkpoint loader that a file came from the Hub (`--trust_checkpoint=True` never covers one).
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, Optional, Tuple

from sf_kickstart.errors import ExperimentError, Fail

HF_PREFIX = "hf://"
HUB_DIR = "hub"
DOWNLOADED = ".sf_kickstart_downloaded"
TEACHER_FILES = ["config.json", "checkpoint_p*/*.pth", "README.md", "evaluation/*.json"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_REVISION = re.compile(r"^[\w.-]+(/[\w.-]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_hub_uri(path: str) -> bool:
    return isinstance(path, str) and path.startswith(HF_PREFIX)


def parse_uri(uri: str, fail: Fail = ExperimentError) -> Tuple[str, Optional[str]]:
    """hf://user/repo[@revision] -> (repo id, revision or None)."""
    repo_id, _, revision = uri[len(HF_PREFIX) :].strip("/").partition("@")
    if not _REPO_ID.match(repo_id) or (revision and not _REVISION.match(revision)):
        raise fail(f"{uri!r} is not a Hugging Face model repository: expected hf://<user>/<repo>[@<revision>]")
    return repo_id, revision or None


def repo_id_of(uri: str, fail: Fail = ExperimentError) -> str:
    return parse_uri(uri, fail)[0]


def hub_dir(repo_id: str, train_dir: Optional[str], revision: Optional[str] = None) -> str:
    name = repo_id.split("/")[1] + (f"@{revision.replace('/', '%2F')}" if revision else "")
    return os.path.abspath(os.path.join(train_dir or "train_dir", HUB_DIR, repo_id.split("/")[0], name))


def fetch(uri: str, train_dir: Optional[str], fail: Fail = ExperimentError) -> str:
    """The local experiment dir of hf://user/repo[@revision], downloaded on first use. `fail(message)` (an
    ExperimentError by default) naming the repo when it cannot be downloaded (offline, missing, private, no such
    revision) or is not a Sample Factory model repository."""
    repo_id, revision = parse_uri(uri, fail)
    local = hub_dir(repo_id, train_dir, revision)
    if os.path.isfile(os.path.join(local, DOWNLOADED)):
        return local
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise fail(f"{uri!r}: downloading it needs huggingface_hub (pip install huggingface_hub)") from exc
    try:
        snapshot_download(repo_id=repo_id, revision=revision, local_dir=local, allow_patterns=TEACHER_FILES)
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no access: all mean "cannot get this teacher"
        raise fail(
            f"{uri!r} could not be downloaded from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            f"Check the repository name, the revision and the network, or download it where there is one and pass "
            f"its directory"
        ) from exc
    if not os.path.isfile(os.path.join(local, "config.json")):
        raise fail(f"{uri!r} is not a Sample Factory model repository: it has no config.json at its root")
    record = dict(uri=uri, repo_id=repo_id, revision=revision, commit=downloaded_commit(local))
    with open(os.path.join(local, DOWNLOADED), "w") as f:
        json.dump(record, f)
    return local


def downloaded_commit(local: str) -> Optional[str]:
    """The commit snapshot_download fetched config.json from: the first line of the metadata file it writes for it
    (`huggingface_hub._local_folder`: commit hash, etag, timestamp); None when there is none."""
    try:
        with open(os.path.join(local, ".cache", "huggingface", "download", "config.json.metadata")) as f:
            commit = f.readline().strip()
    except OSError:
        return None
    return commit if _COMMIT.match(commit) else None


def download_record(exp_dir: str) -> Optional[Dict]:
    """What `fetch` recorded for a downloaded dir (uri, repo_id, revision, commit); None for a dir not from the Hub.
    A marker written before revisions were recorded (the repo id alone) gives revision and commit None."""
    try:
        with open(os.path.join(exp_dir, DOWNLOADED)) as f:
            text = f.read()
    except OSError:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("repo_id"), str):
        record = dict(uri=HF_PREFIX + text.strip(), repo_id=text.strip(), revision=None, commit=None)
    return record


def hub_origin(path: str) -> Optional[Tuple[str, Optional[str]]]:
    """(repo id, revision) when `path` lies in a directory `fetch` downloaded, else None."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        record = download_record(folder)
        if record is not None:
            return record["repo_id"], record.get("revision")
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
