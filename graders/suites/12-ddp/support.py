"""What the 12-ddp checks share: the harness run's files, and the single-process runs the grader
computes itself to compare them with."""
from __future__ import annotations

from pathlib import Path

import torch

from graders.plugin import say
from graders.suites.torchrun import HarnessRun, load_module, max_difference  # noqa: F401  (used by the checks)

NB = "ddp"
HARNESS = Path(__file__).parent / "harness.py"
STEPS, BATCH, MICRO, LR = 3, 24, 2, 0.3  # the harness run: steps, global batch, micro-batches, SGD lr
# fp32 on gloo, measured here: the 2-rank steps differ from the single-process ones by at most
# ~1.5e-8 (the halves of a batch are summed in another order), never bitwise for every seed.
ATOL = 1e-6
harness_module = load_module(HARNESS, "ddp_harness")  # the same model and batch code the ranks run


class DdpRun(HarnessRun):
    def tensors(self, rank: int, phase: str) -> dict:
        error = self.report(rank)["errors"].get(phase)
        if error:
            raise AssertionError(say(f"rank {rank} 在 {phase} 階段出錯：{error}", f"Rank {rank} failed in {phase}: {error}"))
        return self.handle.read_safetensors(f"{self.folder}/rank{rank}-{phase}.safetensors")


def single_process(seed: int, accumulate: bool = False) -> dict:
    """The grader's own run: the same model, SGD on the whole global batch each step."""
    from common_utils.distributed import loss_fn, toy_data, toy_model

    model = toy_model(seed + (2 if accumulate else 1))
    x, y = toy_data(STEPS * BATCH, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for step in range(STEPS):
        optimizer.zero_grad()
        loss_fn(model(x[step * BATCH:(step + 1) * BATCH]), y[step * BATCH:(step + 1) * BATCH]).backward()
        optimizer.step()
    return harness_module.params(model)
