"""A local stand-in for the Hugging Face Hub, for tests (no network here).

Put this directory first on PYTHONPATH and set SF_KICKSTART_FAKE_HUB=<dir>: every Python process then imports the
real huggingface_hub with the three calls the project and Sample Factory make replaced by local-directory versions
(`<dir>/<user>/<repo>/` is the repository):
  * HfApi.create_repo and upload_folder: what SF's push_to_hf calls (`enjoy --push_to_hub`), so the repository gets
    exactly the files SF's push_to_hub uploads;
  * snapshot_download: what `--teacher=hf://user/repo` calls; honours allow_patterns like the real client (fnmatch on
    repository paths) and raises the real RepositoryNotFoundError for a repository that does not exist.
"""

import fnmatch
import os
import shutil

ROOT = os.environ.get("SF_KICKSTART_FAKE_HUB")

if ROOT:
    import huggingface_hub
    from huggingface_hub import errors

    def _repo(repo_id):
        return os.path.join(ROOT, *repo_id.split("/"))

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        os.makedirs(_repo(repo_id), exist_ok=exist_ok)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(repo_id, folder_path, path_in_repo=".", ignore_patterns=None, **kwargs):
        target = os.path.join(_repo(repo_id), path_in_repo)
        for dirpath, _, files in os.walk(folder_path):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), folder_path)
                if any(fnmatch.fnmatch(rel, p) for p in ignore_patterns or []):
                    continue
                os.makedirs(os.path.join(target, os.path.dirname(rel)), exist_ok=True)
                shutil.copyfile(os.path.join(dirpath, name), os.path.join(target, rel))
        with open(os.path.join(ROOT, "uploads.log"), "a") as f:
            f.write(repo_id + "\n")

    def snapshot_download(repo_id, local_dir=None, allow_patterns=None, **kwargs):
        src = _repo(repo_id)
        if not os.path.isdir(src):
            raise errors.RepositoryNotFoundError(f"404 Client Error: Repository Not Found for url: {repo_id}")
        for dirpath, _, files in os.walk(src):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), src)
                if allow_patterns and not any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                    continue
                os.makedirs(os.path.join(local_dir, os.path.dirname(rel)), exist_ok=True)
                shutil.copyfile(os.path.join(dirpath, name), os.path.join(local_dir, rel))
        with open(os.path.join(ROOT, "downloads.log"), "a") as f:
            f.write(repo_id + "\n")
        return local_dir

    huggingface_hub.HfApi.create_repo = create_repo
    huggingface_hub.upload_folder = upload_folder
    huggingface_hub.snapshot_download = snapshot_download
