"""Many processes: how N processes started by torchrun train one model as one program.

`torchrun --nproc-per-node N -m distillrec run CONFIG` starts N copies of the program with RANK,
LOCAL_RANK and WORLD_SIZE set; `init_from_env(device)` opens PyTorch's process group (nccl for CUDA, gloo on
the CPU) and gives rank r the GPU of its LOCAL_RANK. Then:

- training (`train/loop.py`) wraps the module in `DistributedDataParallel`: each global batch of the one-process
  run is cut into N shards by user (`shard`: rank r takes rows r, r+N, ...), each rank computes the loss of its
  shard and DDP averages the gradients, so every rank takes the step of the whole batch (the exact same step when
  the loss is a mean over rows of equal weight; the losses here are means over positions, so it equals it up to
  how a batch's positions divide between the shards). The number of steps per epoch is that of one process, with
  the same global batch size: N processes do an epoch's work in about 1/N of the time.
- rank 0 validates and broadcasts the score, so every rank keeps the same best epoch and stops together; rank 0
  alone writes checkpoints, and a resumed run continues from rank 0's checkpoint, broadcast to every rank.
- everything that is not a training step (data preparation, baselines that do not train in torch, the teacher's
  export, test evaluation) runs in every process, each on its own copy; `pipeline.py` keeps rank 0's files and
  discards the others' (they are the same up to float rounding).

Outside torchrun (WORLD_SIZE unset or 1) every helper here is a no-op: `world()` is (0, 1) and `shard` returns
its input.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from distillrec.devices import resolve_device

__all__ = ["world", "is_main", "shard", "broadcast", "gather_all", "barrier", "init_from_env", "close"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside torchrun."""
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def is_main() -> bool:
    return world()[0] == 0


def shard(rows: np.ndarray) -> np.ndarray:
    """This rank's share of one global batch: rows r, r+N, ... A batch with fewer rows than processes is
    trained whole by every rank (the averaged gradient is then that of the whole batch)."""
    rank, size = world()
    return rows if size == 1 or len(rows) < size else rows[rank::size]


def broadcast(value: Any) -> Any:
    """Rank 0's `value` (any picklable object), on every rank."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_all(value: Any) -> list[Any]:
    """Every rank's `value` (any picklable object), in rank order, on every rank; `[value]` outside torchrun."""
    if not is_distributed():
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def init_from_env(device: str = "auto") -> bool:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1); True when this process
    is one of several. nccl when the processes train on CUDA, gloo otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return is_distributed()
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ValueError(
                f"WORLD_SIZE is set but {name} is not: start several processes with torchrun "
                "(torchrun --nproc-per-node N -m distillrec ...), which sets them all"
            )
    resolved = resolve_device(device)  # a bare "cuda" or "auto": the GPU of this process's LOCAL_RANK
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
    return True


def close(finished: bool = True) -> None:
    """Leave the process group at the end of a torchrun program. `finished`: every rank has come here, so wait
    for all of them first (a rank that tears its connections down while another still uses them can abort it);
    after an error, leave at once (torchrun stops the other ranks)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP wrappers left in reference cycles: their reducers must go before the process group
        if finished:
            dist.barrier()
        dist.destroy_process_group()
