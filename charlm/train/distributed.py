"""Several processes training one model (torchrun): who this process is, its device, and what they share.

torchrun starts one process per device and tells each its place in WORLD_SIZE, RANK, LOCAL_RANK and
LOCAL_WORLD_SIZE. Without those variables (or with one process) a Group is a single process, and every
method below does nothing and costs nothing, so the trainer has one code path. The communication is
torch.distributed's: NCCL between GPUs, Gloo between CPU processes; the model is wrapped in
DistributedDataParallel by the trainer.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Iterator, Sequence

import torch
import torch.distributed as dist

from charlm.errors import UserError

# Collectives wait this long for a slow rank: rank 0 may spend many minutes encoding a large corpus while
# the others wait for it. A rank that dies is noticed sooner: torchrun stops the rest when one process exits.
TIMEOUT = timedelta(minutes=60)
_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class Group:
    rank: int = 0               # this process's place among all of them; 0 prints, evaluates and saves
    world_size: int = 1         # processes training the model, over every machine
    local_rank: int = 0         # its place on this machine: which GPU it uses
    local_world_size: int = 1   # processes on this machine, which share its CPU cores
    backend: str | None = None  # "nccl" or "gloo" once joined; None for one process

    @classmethod
    def from_environment(cls, env=None) -> "Group":
        """This process's place as torchrun describes it; one process when the variables are absent."""
        env = os.environ if env is None else env
        if "WORLD_SIZE" not in env:
            return cls()
        values = {}
        for name in _ENV:
            raw = env.get(name, "1" if name == "LOCAL_WORLD_SIZE" else "0")
            try:
                values[name] = int(raw)
            except ValueError:
                raise UserError(f"the environment variable {name} is {raw[:20]!r}, not a whole number; "
                                 "start distributed runs with torchrun") from None
        group = cls(rank=values["RANK"], world_size=values["WORLD_SIZE"], local_rank=values["LOCAL_RANK"],
                    local_world_size=values["LOCAL_WORLD_SIZE"])
        if not (0 <= group.rank < group.world_size and 0 <= group.local_rank < group.local_world_size):
            raise UserError(f"torchrun's variables do not fit together (RANK {group.rank}, WORLD_SIZE "
                             f"{group.world_size}, LOCAL_RANK {group.local_rank}); start the run with torchrun")
        return group if group.world_size > 1 else cls()

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def place(self, device: torch.device) -> torch.device:
        """This process's own device: GPU number LOCAL_RANK when training on GPUs."""
        if not self.active:
            return device
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise UserError(f"{self.local_world_size} processes on this machine but {torch.cuda.device_count()} "
                                 "GPU(s); give torchrun --nproc_per_node at most the number of GPUs")
            return torch.device("cuda", self.local_rank)
        if device.type != "cpu":
            raise UserError(f"torchrun training runs on CUDA GPUs or CPUs, not {device.type}; "
                             "use --device cuda or --device cpu")
        return device

    # --- what the processes share (each a no-op for one process) ------------------------------------------

    @property
    def _device(self) -> torch.device:
        """Where tensors must be for the backend's collectives."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def share(self, values: Sequence[float]) -> list[float]:
        """Rank 0's numbers, on every rank (the others' are ignored)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._device)
        dist.broadcast(tensor, src=0)
        return tensor.tolist()

    def total(self, value: float) -> float:
        """The sum of every rank's value, on every rank."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.item()

    def gather(self, obj) -> list:
        """Every rank's object (plain data and CPU tensors), in rank order, on every rank."""
        if not self.active:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def share_object(self, obj):
        """Rank 0's object (plain data), on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A seed for process `rank`'s own random stream (its dropout masks), distinct for each run seed, rank and step."""
    return (seed * 1_000_003 + rank * 7_919 + step) % 2**63


@contextmanager
def joined(group: Group, device: torch.device) -> Iterator[Group]:
    """The process group for this run (NCCL for GPUs, Gloo for CPUs), left when the run ends."""
    if not group.active:
        yield group
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(group.local_rank)
    # torchrun's MASTER_ADDR and MASTER_PORT say where to meet (the default env:// rendezvous).
    dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield replace(group, backend=backend)
        # Every rank done with its collectives before any tears the group down: a rank leaving while another
        # still sends (rank 0's last save) made Gloo abort that rank at exit ("terminate called...").
        dist.barrier()
    finally:
        dist.destroy_process_group()
