"""Where a model trains: "auto", "cpu", "cuda", "cuda:N" or "mps", checked where it is configured and
resolved where training starts.

`resolve_device("auto")` is CUDA when torch sees a GPU (under torchrun, the GPU of the process's LOCAL_RANK),
else Apple's MPS, else the CPU. Training moves the module and every batch to the device (`to_device`); scoring
runs wherever the module's weights are (`module_device`) and returns numpy arrays, so a model trained on a GPU is
scored, saved and loaded on a machine without one. Torch is imported inside the functions: the config checks
`DEVICE_PATTERN` without importing it.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_PATTERN", "resolve_device", "module_device", "to_device"]

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"


def resolve_device(device: str) -> torch.device:
    """The torch device that `device` names on this machine; an unavailable GPU is an error that says so (auto
    never is one). A bare "cuda" under torchrun is the GPU of the process's LOCAL_RANK."""
    import torch

    if not isinstance(device, str) or not re.match(DEVICE_PATTERN, device):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        else:
            mps = getattr(torch.backends, "mps", None)
            return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU here (use device cpu or auto)")
        if resolved.index is None:
            resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here")
    return resolved


def module_device(module: torch.nn.Module) -> torch.device:
    """Where `module`'s weights are (the CPU for a module without parameters)."""
    import torch

    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """`batch` with every tensor in it (in dicts, lists and tuples, at any depth) moved to `device`."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(value, device) for value in batch)
    return batch
