"""A local stand-in for the Hugging Face Hub, for tests (no network here).

Put this directory first on PYTHONPATH and set SF_KICKSTART_FAKE_HUB=<dir>: every Python process then imports the
real huggingface_hub with the three calls the project and Sample Factory make replaced by local-directory versions
(`install`; in-process tests call it themselves, e.g. through monkeypatch):
  * HfApi.create_repo and upload_folder: what SF's push_to_hf calls (`enjoy --push_to_hub`), so the repository gets
    exactly the files SF's push_to_hub uploads;
  * snapshot_download: what `--teacher=hf://user/repo[@revision]` calls; honours allow_patterns like the real client
    (fnmatch on repository paths), raises the real RepositoryNotFoundError / RevisionNotFoundError, and writes the
    download metadata the real client writes into local_dir (`.cache/huggingface/download/<file>.metadata`: commit
    hash, etag, timestamp), from which the project reads the commit it downloaded.

A repository is `<dir>/<user>/<repo>/` (its default branch); `<dir>/<user>/<repo>@<revision>/` is the same repository
at another revision (a branch, a tag or a 40-hex commit). A revision's commit is its name when that is 40 hex digits,
else the sha1 of its files (so changing a file of the default branch gives it a new commit, as a push would).
"""

import fnmatch
import hashlib
import os
import re
import shutil
import time

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def root():
    return os.environ.get("SF_KICKSTART_FAKE_HUB")


def _repo(repo_id, revision=None):
    return os.path.join(root(), *repo_id.split("/")) + (f"@{revision}" if revision else "")


def _files(folder):
    for dirpath, _, files in os.walk(folder):
        for name in files:
            yield os.path.relpath(os.path.join(dirpath, name), folder)


def _sha(path, algo=hashlib.sha256):
    with open(path, "rb") as f:
        return algo(f.read()).hexdigest()


def commit_of(repo_id, revision=None):
    """The commit hash the stand-in gives a repository at a revision (see the module docstring)."""
    if revision and _COMMIT.match(revision):
        return revision
    src = _repo(repo_id, revision)
    listing = "".join(f"{rel}:{_sha(os.path.join(src, rel))}\n" for rel in sorted(_files(src)))
    return hashlib.sha1(listing.encode()).hexdigest()


def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
    os.makedirs(_repo(repo_id), exist_ok=exist_ok)
    return f"https://huggingface.co/{repo_id}"


def upload_folder(repo_id, folder_path, path_in_repo=".", ignore_patterns=None, **kwargs):
    target = os.path.join(_repo(repo_id), path_in_repo)
    for rel in _files(folder_path):
        if any(fnmatch.fnmatch(rel, p) for p in ignore_patterns or []):
            continue
        os.makedirs(os.path.join(target, os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(os.path.join(folder_path, rel), os.path.join(target, rel))
    with open(os.path.join(root(), "uploads.log"), "a") as f:
        f.write(repo_id + "\n")


def _write_metadata(local_dir, rel, commit):
    meta = os.path.join(local_dir, ".cache", "huggingface", "download", rel + ".metadata")
    os.makedirs(os.path.dirname(meta), exist_ok=True)
    with open(meta, "w") as f:
        f.write(f"{commit}\n{_sha(os.path.join(local_dir, rel))}\n{time.time()}\n")


def snapshot_download(repo_id, revision=None, local_dir=None, allow_patterns=None, **kwargs):
    from huggingface_hub import errors

    if not os.path.isdir(_repo(repo_id)):
        raise errors.RepositoryNotFoundError(f"404 Client Error: Repository Not Found for url: {repo_id}")
    src = _repo(repo_id, revision)
    if not os.path.isdir(src):
        raise errors.RevisionNotFoundError(f"404 Client Error: Revision Not Found for url: {repo_id}@{revision}")
    commit = commit_of(repo_id, revision)
    for rel in _files(src):
        if allow_patterns and not any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
            continue
        os.makedirs(os.path.join(local_dir, os.path.dirname(rel)), exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), os.path.join(local_dir, rel))
        _write_metadata(local_dir, rel, commit)
    with open(os.path.join(root(), "downloads.log"), "a") as f:
        f.write(repo_id + (f"@{revision}" if revision else "") + "\n")
    return local_dir


def install(patch=setattr):
    """Replace the three calls in huggingface_hub (`patch`: setattr, or a pytest monkeypatch's setattr)."""
    import huggingface_hub

    patch(huggingface_hub.HfApi, "create_repo", create_repo)
    patch(huggingface_hub, "upload_folder", upload_folder)
    patch(huggingface_hub, "snapshot_download", snapshot_download)


if root():
    install()
