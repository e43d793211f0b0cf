"""A toy classifier and its data for the distributed-training labs (12-ddp).

Small on purpose: two processes on a 2-core CPU train it in a second, so what the lab teaches
(sharding, broadcast, all-reduce, no_sync) is not drowned in compute. The same functions build
the model and the batches in a student's ranks, in the grader's harness and in the grader's
single-process reference run, so equal seeds give bit-identical starting points everywhere.
"""
from __future__ import annotations

import torch
from torch import nn

FEATURES, HIDDEN, CLASSES = 16, 33, 5  # odd sizes: nothing lines up by accident


def toy_model(seed: int) -> nn.Module:
    """An MLP initialised from ``seed`` alone (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES))


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled points: class = argmax of a fixed random projection, so it is learnable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=g)
    w = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(1234))
    return x, (x @ w).argmax(dim=1)


def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, labels)


def launch_torchrun(script: str, args=(), nproc: int = 2, timeout_s: float = 300, attempts: int = 3) -> dict:
    """Run ``script`` under torchrun on a free local port, one CPU thread per rank; kill every
    rank if it overruns. Returns {"returncode", "output" (its last 4000 characters)}.

    The port is free when chosen but not reserved: where other jobs share the network (no
    sandbox of its own), one of their sockets can take it before torchrun listens. That run
    fails with "address already in use" and is started again on another port.
    (Lab 12-ddp has students write this themselves; later labs import it.)"""
    for _ in range(attempts):
        result = _torchrun_once(script, args, nproc, timeout_s)
        if result["returncode"] == 0 or not _port_taken(result["output"]):
            break
    return result


def _port_taken(output: str) -> bool:
    text = output.lower()
    return "address already in use" in text or "eaddrinuse" in text


def _torchrun_once(script: str, args, nproc: int, timeout_s: float) -> dict:
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={port}", script, *map(str, args)]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        import psutil

        for child in psutil.Process(proc.pid).children(recursive=True):  # torchrun gives each rank its own session
            child.kill()
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0] + f"\n[launch] killed after {timeout_s} s"
    return {"returncode": proc.returncode, "output": output[-4000:]}


def no_jit_comm_op() -> None:
    """Keep DeepSpeed from JIT-compiling its shared-memory all-reduce op on CPU.

    DeepSpeed's CPU backend builds that op with g++ on first use (about 30 s per rank, cached
    under ~/.cache/torch_extensions, which in the grading sandbox is a fresh folder every time).
    gloo's all-reduce is all these labs need. Call it before ``deepspeed.initialize``.
    """
    import sys

    import deepspeed.comm.torch  # noqa: F401  (``deepspeed.comm.torch`` the attribute is torch itself)

    sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None
