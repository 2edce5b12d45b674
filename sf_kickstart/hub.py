"""Teachers from the Hugging Face Hub: `--teacher=hf://user/repo` (also as a path in a `--teachers` map).

A Sample Factory model repository is what SF's `push_to_hub` uploads (`python -m sf_kickstart.enjoy ... --push_to_hub
--hf_repository=user/repo`, or SF's own enjoy scripts): the experiment directory itself at the repository root,
`config.json`, `checkpoint_p<policy>/checkpoint_*.pth` (and `best_*.pth`), `README.md` (model card), `replay.mp4`,
`.summary/`, `sf_log.txt`. The files a teacher needs (config, checkpoints, card, our evaluation cache) are downloaded
once with `huggingface_hub.snapshot_download` into `<train_dir>/hub/<user>/<repo>/`; afterwards that directory is
used as it is (a marker file says the download completed), offline too.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from sf_kickstart.experiments import ExperimentError

HF_PREFIX = "hf://"
HUB_DIR = "hub"
DOWNLOADED = ".sf_kickstart_downloaded"
TEACHER_FILES = ["config.json", "checkpoint_p*/*.pth", "README.md", "evaluation/*.json"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def is_hub_uri(path: str) -> bool:
    return isinstance(path, str) and path.startswith(HF_PREFIX)


def repo_id_of(uri: str) -> str:
    repo_id = uri[len(HF_PREFIX) :].strip("/")
    if not _REPO_ID.match(repo_id):
        raise ExperimentError(f"{uri!r} is not a Hugging Face model repository: expected hf://<user>/<repo>")
    return repo_id


def hub_dir(repo_id: str, train_dir: Optional[str]) -> str:
    return os.path.abspath(os.path.join(train_dir or "train_dir", HUB_DIR, *repo_id.split("/")))


def fetch(uri: str, train_dir: Optional[str]) -> str:
    """The local experiment dir of hf://user/repo, downloaded on first use. ExperimentError naming the repo when it
    cannot be downloaded (offline, missing, private) or is not a Sample Factory model repository."""
    repo_id = repo_id_of(uri)
    local = hub_dir(repo_id, train_dir)
    if os.path.isfile(os.path.join(local, DOWNLOADED)):
        return local
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ExperimentError(f"{uri!r}: downloading it needs huggingface_hub (pip install huggingface_hub)") from exc
    try:
        snapshot_download(repo_id=repo_id, local_dir=local, allow_patterns=TEACHER_FILES)
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no access: all mean "cannot get this teacher"
        raise ExperimentError(
            f"{uri!r} could not be downloaded from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            f"Check the repository name and the network, or download it where there is one and pass its directory"
        ) from exc
    if not os.path.isfile(os.path.join(local, "config.json")):
        raise ExperimentError(f"{uri!r} is not a Sample Factory model repository: it has no config.json at its root")
    with open(os.path.join(local, DOWNLOADED), "w") as f:
        f.write(repo_id + "\n")
    return local
