"""Training on several devices: one process per device (started by `accelerate launch`, which sets RANK and
WORLD_SIZE), joined by torch.distributed. With one process every call here is a no-op, so the loop reads the same
either way. Only rank 0 writes the run folder; metrics are summed across ranks."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    mode: str = "ddp"  # ddp | fsdp

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, mode: str = "ddp") -> "Distributed":
        """The process group `accelerate launch` describes in the environment (gloo on CPUs, nccl on GPUs), or a
        single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(mode=mode)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")), mode)

    def device(self, device: torch.device) -> torch.device:
        """Each rank its own GPU; CPU ranks share the CPU."""
        if self.active and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: nn.Module, param_groups: list[dict]) -> tuple[nn.Module, list[dict]]:
        """DDP (a copy per device, gradients averaged) or FSDP (parameters sharded per layer stack). FSDP puts
        new (sharded) parameters in place of the old ones, so the optimizer's groups are rebuilt by name."""
        if not self.active:
            return model, param_groups
        if self.mode == "fsdp":
            from torch.distributed.fsdp import fully_shard
            names = {id(p): n for n, p in model.named_parameters()}
            for module in list(model.modules()):
                if isinstance(module, nn.ModuleList):
                    for layer in module:
                        fully_shard(layer)
            fully_shard(model)
            sharded = dict(model.named_parameters())
            return model, [{**g, "params": [sharded[names[id(p)]] for p in g["params"]]} for g in param_groups]
        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids), param_groups

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum over ranks (the tensor itself on one process)."""
        if self.active:
            tensor = tensor.clone()
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank says so: ranks must stop at the same step or they would wait for
        each other forever."""
        if not self.active:
            return flag
        return bool(self.sum(torch.tensor([int(flag)], dtype=torch.int64)).item())

    def gather(self, items: list) -> list:
        """Every rank's list, concatenated in rank order (on every rank)."""
        if not self.active:
            return items
        out: list = [None] * self.world_size
        dist.all_gather_object(out, items)
        return [item for part in out for item in part]

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def full_state(model: nn.Module, dist_: Distributed) -> dict[str, torch.Tensor]:
    """Every weight on the CPU, gathered from the shards under FSDP (on every rank: the call is collective)."""
    if _fsdp(dist_):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}


def _fsdp(dist_: Distributed) -> bool:
    return dist_.active and dist_.mode == "fsdp"


def load_state(model: nn.Module, state: dict[str, torch.Tensor], dist_: Distributed) -> None:
    """Loads (some of) the weights; under FSDP rank 0's full tensors are sharded out to every rank."""
    if _fsdp(dist_):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))
    else:
        unwrap(model).load_state_dict(state, strict=False)


def optimizer_state(model: nn.Module, optimizer, dist_: Distributed) -> dict:
    if _fsdp(dist_):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict
        return get_optimizer_state_dict(model, optimizer,
                                        options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return optimizer.state_dict()


def load_optimizer_state(model: nn.Module, optimizer, state: dict, dist_: Distributed) -> None:
    if _fsdp(dist_):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)


class ShardedSampler(torch.utils.data.Sampler):
    """This rank's share of an epoch. Training: a permutation seeded by (seed, epoch), padded so every rank takes the
    same number of steps, and able to start part-way (a run resumed mid-epoch takes the batches it had not taken).
    Validation: every example exactly once across ranks (no padding), so metrics summed over ranks are exact."""

    def __init__(self, size: int, dist_: Distributed, shuffle: bool, seed: int = 0):
        self.size, self.dist, self.shuffle, self.seed = size, dist_, shuffle, seed
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """skip: examples of this rank's share already taken (a resumed epoch)."""
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.dist.rank, self.size, self.dist.world_size))
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        world = self.dist.world_size
        per_rank = -(-self.size // world)
        order += order[:per_rank * world - self.size]  # pad with the first examples again
        return order[self.dist.rank::world]

    def __iter__(self):
        return iter(self._indices()[self.skip:])

    def __len__(self) -> int:
        world, rank = self.dist.world_size, self.dist.rank
        share = -(-self.size // world) if self.shuffle else len(range(rank, self.size, world))
        return share - self.skip
