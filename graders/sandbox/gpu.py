"""What a sandboxed kernel needs to use the GPU of a grading runner, and nothing more.

Three things differ from a CPU kernel:

- **Memory.** CUDA reserves virtual address space far beyond the card and the host (tens of GiB
  at its first call), so an RLIMIT_AS of a few GiB makes ``torch.cuda`` fail to initialise. On a
  GPU runner the kernel's host memory is bounded by its cgroup's ``memory.max`` where the memory
  controller is writable, and otherwise by the sampler, which kills a tree whose resident memory
  passes the limit (``KernelSession._sample_memory``). The card's memory is the checks' business
  (the peak-memory checks measure it).
- **Environment.** The driver's variables (which GPUs, where its libraries are) pass through;
  the library folders are bound read-only under bubblewrap, which also binds the device nodes
  (``bwrap.GPU_DEVICES``).
- **Warm kernels.** The dynamic loader reads LD_LIBRARY_PATH once, when a process starts, and CUDA
  cannot be used in a child forked after its parent touched it; GPU kernels start cold.
"""
from __future__ import annotations

import os

PASSED = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "CUDA_HOME",
          "CUDA_PATH", "LD_LIBRARY_PATH")
DRIVER_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/local/cuda/lib64")


def available() -> bool:
    """Whether this grader sees a CUDA GPU (and so gives its kernels one)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def environment() -> dict[str, str]:
    """The driver's variables of this process, for the kernel."""
    return {k: os.environ[k] for k in PASSED if os.environ.get(k)}


def library_dirs() -> list[str]:
    """Folders the kernel must read to load the driver: those on LD_LIBRARY_PATH and the usual ones."""
    listed = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    return [d for d in dict.fromkeys([*listed, *DRIVER_DIRS]) if os.path.isdir(d)]


def join_library_path(*paths: str) -> str:
    """LD_LIBRARY_PATH made of ``paths`` (each itself a path list) in order, without repeats."""
    parts = [p for value in paths for p in (value or "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(parts))
