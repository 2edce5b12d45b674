"""Fault injection for tests/test_faults.py, loaded by every Python process of a run whose PYTHONPATH starts with this
directory (spawned Sample Factory workers included: each is a fresh interpreter that imports sitecustomize).

SF_KICKSTART_TEST_DISK_FULL_AFTER=N: in every process, the first N calls of torch.save succeed; later calls write a
few bytes of the file and then raise OSError(ENOSPC), as a full disk does.
"""

import errno
import os

_after = os.environ.get("SF_KICKSTART_TEST_DISK_FULL_AFTER")
if _after is not None:
    import torch

    _real_save = torch.save
    _calls = [0]

    def _save_on_a_full_disk(obj, f, *args, **kwargs):
        _calls[0] += 1
        if _calls[0] <= int(_after):
            return _real_save(obj, f, *args, **kwargs)
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as partial:
                partial.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))

    torch.save = _save_on_a_full_disk
