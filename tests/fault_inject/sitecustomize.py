"""Fault injection for tests/test_faults.py, loaded by every Python process of a run whose PYTHONPATH starts with this
directory (spawned Sample Factory workers included: each is a fresh interpreter that imports sitecustomize).

SF_KICKSTART_TEST_DISK_FULL_AFTER=N: in every process, the first N calls of torch.save succeed; later calls write a
few bytes of the file and then raise OSError(ENOSPC), as a full disk does.
SF_KICKSTART_TEST_NAN_VALUE_LOSS=RANGES: the learner's value loss is NaN on those minibatches (see below).
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

# SF_KICKSTART_TEST_NAN_VALUE_LOSS=4-5,30-: in the learner, the value losses of these minibatches (1-based call
# counts, inclusive ranges; "30-": from the 30th on) are NaN, as a diverging loss is.
_nan_calls = os.environ.get("SF_KICKSTART_TEST_NAN_VALUE_LOSS")
if _nan_calls is not None:
    from sample_factory.algo.learning.learner import Learner

    _ranges = [(int(a), int(b) if b else float("inf")) for a, b in (r.split("-") for r in _nan_calls.split(","))]
    _real_value_loss = Learner._value_loss
    _value_calls = [0]

    def _value_loss_turning_nan(self, *args, **kwargs):
        loss = _real_value_loss(self, *args, **kwargs)
        _value_calls[0] += 1
        return loss * float("nan") if any(a <= _value_calls[0] <= b for a, b in _ranges) else loss

    Learner._value_loss = _value_loss_turning_nan
