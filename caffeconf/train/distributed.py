"""Several training processes with torch.distributed: each reads its slice of every global batch,
gradients are averaged across processes after the backward passes (as Caffe's NCCL solver
averages them), and every process applies the same update. The first process tests, reports and
snapshots. `caffeconf train --nproc N` spawns N local processes; under torchrun (RANK and
WORLD_SIZE set) the processes join the group torchrun describes.
"""

from __future__ import annotations

import os
import socket
from typing import Callable

import torch
import torch.distributed as dist

from .data import Shard


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def under_launcher() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join(device: torch.device, rank: int | None = None, world: int | None = None) -> Shard:
    """Join the process group (from torchrun's environment when rank/world are not given)."""
    if rank is None:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group(backend_for(device), rank=rank, world_size=world)
    return Shard(rank, world)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params) -> None:
    """All-reduce every gradient (one flat buffer) and divide by the number of processes."""
    grads = []
    for param in params:
        if param.tensor.requires_grad:
            if param.tensor.grad is None:
                param.tensor.grad = torch.zeros_like(param.tensor)
            grads.append(param.tensor.grad)
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for g, part in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(part.view_as(g))


def strongest_request(device: torch.device) -> Callable[[int], int]:
    """A function all processes call once per iteration: the largest request any of them holds."""
    def agree(request: int) -> int:
        value = torch.tensor([request], dtype=torch.int32, device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return int(value.item())
    return agree


def spawn(nproc: int, worker: Callable[[int, int, tuple], int], payload: tuple) -> int:
    """Run `worker(rank, nproc, payload)` in `nproc` processes on localhost; the largest exit status.
    Signals sent to this process are passed on to the workers (which act on them together)."""
    import signal

    import torch.multiprocessing as mp

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    results = mp.get_context("spawn").SimpleQueue()
    context = mp.start_processes(_run_worker, args=(nproc, worker, payload, results), nprocs=nproc,
                                 start_method="spawn", join=False)

    def forward(number, _frame):
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, number)

    caught = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {number: signal.signal(number, forward) for number in caught}
    try:
        while not context.join():
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return max((results.get() for _ in range(nproc)), key=abs)


def _run_worker(rank: int, nproc: int, worker, payload, results) -> None:
    code = 1
    try:
        code = worker(rank, nproc, payload)
    finally:
        results.put(code)
