"""Where and in what precision a net runs: device choice, cuDNN settings, autocast."""

from __future__ import annotations

import contextlib

import torch

from ..errors import CaffeconfError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise CaffeconfError.at(None, "--device cuda: no CUDA device is available",
                                hint="use --device cpu (or auto)")
    device = torch.device(name)
    if device.type == "cuda":
        # cuDNN does the convolutions; benchmark mode autotunes them per input shape.
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
        # TF32 would round fp32 convolutions and matmuls to 10-bit mantissas: not Caffe's numbers.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return device


def describe(device: torch.device) -> str:
    """One line: the device and its library versions (cuDNN on CUDA)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return (f"cuda:{index} {torch.cuda.get_device_name(index)}, torch {torch.__version__}, "
                f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    return f"cpu ({torch.get_num_threads()} threads), torch {torch.__version__}"


def autocast(device: torch.device, precision: str):
    """fp32 runs as is; bf16/fp16 run under autocast (weights stay fp32, like mixed precision)."""
    dtype = PRECISIONS[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_threads(threads: int | None, processes: int = 1) -> str | None:
    """Give PyTorch `threads` CPU threads (default: the cores shared among `processes`); a warning
    when the processes together would run more threads than there are cores (they slow each other)."""
    import os

    cores = os.cpu_count() or 1
    threads = threads or max(cores // processes, 1)
    torch.set_num_threads(threads)
    if processes * threads > cores:
        return (f"warning: {processes} process(es) x {threads} thread(s) exceed the {cores} CPU core(s): "
                "they will slow each other down (lower --nproc or --threads)")
    return None
