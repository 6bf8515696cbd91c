"""The torch device a user names, checked before any model loads."""

from __future__ import annotations

from grounder.errors import InputError


def check_device(device: str | None) -> str:
    """`device` as torch will take it, or a one-line InputError: "auto" (a GPU when torch sees
    one, else the CPU), "cpu", "cuda", "cuda:N", "mps". A GPU that is not there fails here,
    not deep inside the first forward pass."""
    import torch

    name = (device or "cpu").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:N, mps or auto)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: torch sees no CUDA GPU on this machine "
                             "(torch.cuda.is_available() is False); use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: torch sees no Apple GPU (MPS) here; use --device cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {device!r}: groundqa runs on cpu, cuda or mps")
    return name
