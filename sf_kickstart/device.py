"""`--device=gpu` (Sample Factory's default, and what the GPU presets ask for) needs a CUDA GPU: without one SF fails
deep in its sampler (an IndexError). Checked once, in the main process, before any worker starts."""

from __future__ import annotations

from sf_kickstart.errors import UserError


class DeviceError(UserError):
    pass


def check_device(device: str) -> None:
    if device != "gpu":
        return
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise DeviceError(
            "--device=gpu (Sample Factory's default) but this machine has no CUDA GPU "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False): pass --device=cpu"
        )
