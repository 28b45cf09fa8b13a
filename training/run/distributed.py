"""Training on several processes or machines (torchrun, DistributedDataParallel): who this process is
in the group, which items of each batch it draws, and the few collectives the trainer needs beyond
DDP's averaging of the gradients.

    torchrun --standalone --nproc_per_node 2 -m app.cli train --config training/configs/smoke.json

The config's batch_size is the batch of the whole group: rank r of W draws items r*B/W .. (r+1)*B/W - 1
of step k's batch, each item a pure function of (seed, k, item), so a run takes the same batches on one
process or on many, and DDP's gradient average over equal shares is the one process's gradient over
the whole batch: batch norm normalises over the whole batch too (GroupBatchNorm on CPUs, torch's
SyncBatchNorm on GPUs), so the step is the one process's step up to rounding. Stopping
(Ctrl-C, SIGTERM, the time budget) is agreed on by all ranks before each step, so every rank stops at
the same step and rank 0 writes the checkpoint; the validation score that drives the learning-rate
schedule is rank 0's, sent to all.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from training.errors import TrainingError

# A rank waits this long for the others (rank 0 validating, writing a checkpoint) before giving up.
TIMEOUT = datetime.timedelta(minutes=30)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise TrainingError(f"the environment variable {name}={text!r} is not a whole number") from None


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device_type: str = "cpu") -> "Group":
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK and join the process group (gloo on CPUs,
        nccl on CUDA GPUs) when there is more than one process."""
        world = _env_int("WORLD_SIZE", 1)
        rank = _env_int("RANK", 0)
        local = _env_int("LOCAL_RANK", 0)
        if world < 1 or not 0 <= rank < world or local < 0:
            raise TrainingError(f"RANK={rank} of WORLD_SIZE={world} (LOCAL_RANK={local}) is not a place in a group")
        if world > 1 and not dist.is_initialized():
            backend = "nccl" if device_type == "cuda" else "gloo"
            try:
                dist.init_process_group(backend, timeout=TIMEOUT)
            except (RuntimeError, ValueError) as exc:
                raise TrainingError(f"cannot join the {world}-process training group: {exc}") from exc
        return cls(rank, world, local)

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (checkpoints, logs, validation)."""
        return self.rank == 0

    def shard(self, batch_size: int) -> range:
        """The items of each batch this rank draws."""
        if batch_size % self.world:
            raise TrainingError(f"batch_size {batch_size} does not split evenly over {self.world} processes; "
                                f"make it a multiple of {self.world}")
        per = batch_size // self.world
        return range(self.rank * per, (self.rank + 1) * per)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum over all ranks (float64)."""
        if self.world == 1:
            return np.asarray(values, dtype=np.float64)
        t = torch.as_tensor(np.asarray(values, dtype=np.float64))
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.numpy()

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank says True."""
        if self.world == 1:
            return bool(flag)
        return bool(self.sum(np.array([1.0 if flag else 0.0]))[0] > 0)

    def from_main(self, value: Optional[float]) -> float:
        """Rank 0's value on every rank (a rank other than 0 passes anything, e.g. None)."""
        if self.world == 1:
            return float("nan") if value is None else float(value)
        t = torch.tensor([float("nan") if value is None or not self.main else float(value)], dtype=torch.float64)
        dist.broadcast(t, src=0)
        return float(t.item())

    def close(self) -> None:
        """Leave the group together: a rank that tears its connections down while another still holds
        them open makes gloo's reader thread on that other rank throw, which aborts it (SIGABRT, seen
        once in CI at the end of a run); a barrier first means every rank is done talking."""
        if self.world > 1 and dist.is_initialized():
            try:
                dist.barrier()
            except RuntimeError:
                pass  # a peer is already gone (it stopped on an error of its own): nothing to wait for
            dist.destroy_process_group()


class GroupBatchNorm(_BatchNorm):
    """Batch norm over the whole group's batch on any device (torch's SyncBatchNorm needs a GPU): each
    rank's per-channel sums are added across ranks (through an all-reduce that autograd sees through),
    so every rank normalises with, and keeps running statistics of, the whole batch. Same parameters
    and buffers as the layer it replaces; one process alone, or in eval mode, it is plain batch norm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([xf.numel() / xf.shape[1]], dtype=torch.float32, device=x.device)
        # two passes, as batch norm itself: the mean first, then the spread around it
        first = _SumOverRanks.apply(torch.cat([xf.sum(dims), count]))
        n = first[-1]
        mean = first[:-1] / n
        centred = xf - mean.view(shape)
        var = _SumOverRanks.apply((centred * centred).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                tracked = self.num_batches_tracked
                assert tracked is not None
                tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1)), alpha=m)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) that autograd sees through: the gradient of a sum over ranks is the sum over
    ranks of the gradients."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


def sync_batch_norm(model: nn.Module, device_type: str) -> nn.Module:
    """The model with every batch-norm layer normalising over the whole group's batch."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if isinstance(child, _BatchNorm) and not isinstance(child, GroupBatchNorm):
            bn = GroupBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            bn.to(next(child.buffers(), torch.empty(0)).device)
            bn.train(child.training)
            setattr(model, name, bn)
        else:
            sync_batch_norm(child, device_type)
    return model
