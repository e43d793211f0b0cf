"""The grader's torchrun harness for 12-ddp: runs the student's functions in every rank.

The suite copies this file into the submission's scratch folder and asks the student's own
``launch`` (inside the sandboxed kernel) to run it under torchrun. Each rank imports the
student's ``train_ddp`` module, drives its functions on models and batches the grader chose
(``--seed``), counts the collectives it makes, and writes what it saw to ``--out/rank{R}.*``.
The grader then recomputes everything in one process and compares. A phase that raises is
recorded and the rest still runs, so one mistake fails only its own checks.

Run by hand: torchrun --nproc_per_node 2 harness.py --out h --seed 1 --steps 3 --batch 24 --micro 2
"""
from __future__ import annotations

import argparse
import json
import os
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from common_utils.distributed import toy_data, toy_model

COUNTS = {"all_reduce": 0}


def _count(name: str, original):
    def counted(*args, **kwargs):
        COUNTS[name] = COUNTS.get(name, 0) + 1
        return original(*args, **kwargs)

    return counted


def install_counters() -> None:
    """Count the student's all_reduce calls, however they reach the function (before import)."""
    import torch.distributed.distributed_c10d as c10d

    for name in ("all_reduce", "all_reduce_coalesced"):
        wrapped = _count("all_reduce", getattr(dist, name))
        setattr(dist, name, wrapped)
        setattr(c10d, name, wrapped)


def rank_batch(x: torch.Tensor, y: torch.Tensor, step: int, batch: int, rank: int, world: int):
    """Rank ``rank``'s contiguous slice of global batch ``step``."""
    per = batch // world
    start = step * batch + rank * per
    return x[start:start + per], y[start:start + per]


def params(model: torch.nn.Module) -> dict:
    module = getattr(model, "module", model)
    return {k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


class Phases:
    def __init__(self, out: Path, rank: int):
        self.out, self.rank, self.report = out, rank, {"errors": {}}

    def run(self, name: str, fn) -> None:
        try:
            fn()
        except Exception as err:  # the student's mistake: recorded, the other phases go on
            self.report["errors"][name] = f"{type(err).__name__}: {err}"[:500]
            traceback.print_exc()

    def save(self, name: str, tensors: dict) -> None:
        save_file(tensors, str(self.out / f"rank{self.rank}-{name}.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="folder for rank{R}.json and tensors")
    parser.add_argument("--seed", type=int, required=True, help="grader-chosen seed of models and data")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=24, help="global batch; divisible by world x micro")
    parser.add_argument("--micro", type=int, default=2, help="micro-batches per step in the accumulation phase")
    parser.add_argument("--lr", type=float, default=0.3)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    install_counters()
    import train_ddp as student  # the student's script, from the scratch folder

    rank, world = student.setup()
    phases = Phases(out, rank)
    report = phases.report
    report.update(rank=rank, world=world, master_port=os.environ.get("MASTER_PORT", ""), backend=dist.get_backend())
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    x, y = toy_data(args.steps * args.batch, args.seed)
    x, y = x.to(device), y.to(device)

    # 1-2: broadcast over rank-specific inits, then hand-synchronised SGD steps.
    model = toy_model(args.seed + 1 + rank).to(device)
    phases.run("broadcast", lambda: (student.broadcast_parameters(model), phases.save("broadcast", params(model))))
    report["allreduce_per_step"] = []

    def manual() -> None:
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        for step in range(args.steps):
            before = COUNTS["all_reduce"]
            student.manual_step(model, optimizer, *rank_batch(x, y, step, args.batch, rank, world))
            report["allreduce_per_step"].append(COUNTS["all_reduce"] - before)
        phases.save("manual", params(model))

    phases.run("manual", manual)
    report["grad_tensors"] = sum(1 for p in model.parameters() if p.requires_grad)

    # 3: DDP with gradient accumulation; a comm hook counts the buckets DDP all-reduces.
    ddp_model = None
    report["buckets_per_step"], report["buckets_per_sync"] = [], None

    def accumulation() -> None:
        nonlocal ddp_model
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        buckets = [0]

        def hook(state, bucket):
            buckets[0] += 1
            return allreduce_hook(state, bucket)

        ddp_model = student.wrap_ddp(toy_model(args.seed + 2 + rank).to(device))
        ddp_model.register_comm_hook(None, hook)
        optimizer = torch.optim.SGD(ddp_model.parameters(), lr=args.lr)
        for step in range(args.steps):
            xs, ys = rank_batch(x, y, step, args.batch, rank, world)
            micro = [(a, b) for a, b in zip(xs.chunk(args.micro), ys.chunk(args.micro))]
            before = buckets[0]
            student.accumulation_step(ddp_model, optimizer, micro)
            report["buckets_per_step"].append(buckets[0] - before)
        phases.save("accumulation", params(ddp_model))
        before = buckets[0]  # one plain backward: how many buckets one synchronisation takes
        ddp_model(xs).sum().backward()
        report["buckets_per_sync"] = buckets[0] - before

    phases.run("accumulation", accumulation)

    # 4: each rank saves from its own folder, so a file tells which rank wrote it.
    def checkpoint() -> None:
        folder = out / f"ckpt-rank{rank}"
        folder.mkdir(exist_ok=True)
        os.chdir(folder)
        student.save_checkpoint(ddp_model if ddp_model is not None else model, "ckpt/model.safetensors")

    phases.run("checkpoint", checkpoint)
    phases.run("teardown", student.teardown)
    report["initialized_after_teardown"] = dist.is_initialized()
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
