"""The grader's torchrun harness for 13-deepspeed-zero: the student's engine in every rank.

The suite copies this file into the scratch folder and runs it with ``launch_torchrun`` from the
sandboxed kernel. For each ZeRO stage every rank builds the tiny Llama, takes the student's
config and engine, trains on token batches drawn from the grader's ``--seed``, and records what
the engine holds (measured here, not reported by the student): the size of this rank's fp32
optimizer partition and of its Adam state, stage 3's parameter shards, and the gathered weights.
For the last stage the student's ``save_fp32`` consolidates a checkpoint. A phase that raises is
recorded and the rest still runs.

Run by hand: torchrun --nproc_per_node 2 harness.py --out h --seed 1
"""
from __future__ import annotations

import argparse
import json
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

STAGES, STEPS, MICRO, ACCUMULATION, LENGTH, LR = (1, 2, 3), 2, 2, 2, 16, 1e-3


def batches(seed: int, world: int) -> torch.Tensor:
    """Token ids of shape (steps, accumulation, world, micro, length), from ``seed`` alone."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 512, (STEPS, ACCUMULATION, world, MICRO, LENGTH), generator=g)


def measure(engine) -> dict:
    """This rank's share of the optimizer: fp32 master elements and Adam state elements."""
    inner = getattr(engine.optimizer, "optimizer", engine.optimizer)  # ZeRO wraps the torch AdamW
    master = sum(p.numel() for group in inner.param_groups for p in group["params"])
    state = sum(t.numel() for s in inner.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    shards = [(p.ds_tensor.numel(), p.ds_numel) for p in engine.module.parameters() if hasattr(p, "ds_tensor")]
    return {"master": master, "adam_state": state, "local_param_numel": sum(s for s, _ in shards),
            "partitioned_params": len(shards), "params": sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel()
                                                             for p in engine.module.parameters())}


def gathered(engine) -> dict:
    import deepspeed

    params = list(engine.module.parameters())
    with deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=any(hasattr(p, "ds_tensor") for p in params)):
        return {name: p.detach().float().clone().contiguous() for name, p in engine.module.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    import train_zero as student  # the student's script, from the scratch folder
    from common_utils.models import load_model

    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    ids = batches(args.seed, world)
    report = {"rank": rank, "world": world, "errors": {}, "stages": {}}
    for stage in STAGES:
        try:
            config = student.make_config(stage, MICRO, ACCUMULATION, world)
            engine = student.build_engine(load_model("llama", "tiny"), config, LR)
            mine = [ids[s, i, rank] for s in range(STEPS) for i in range(ACCUMULATION)]
            student.train_steps(engine, mine)
            report["stages"][stage] = {**measure(engine), "zero_stage": engine.zero_optimization_stage()}
            weights = gathered(engine)
            if rank == 0:
                save_file(weights, str(out / f"stage{stage}.safetensors"))
            if stage == STAGES[-1]:
                folder = out / "ckpt"
                student.save_fp32(engine, str(folder))
        except Exception as err:  # the student's mistake: recorded, the next stage still runs
            report["errors"][str(stage)] = f"{type(err).__name__}: {err}"[:500]
            traceback.print_exc()
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
