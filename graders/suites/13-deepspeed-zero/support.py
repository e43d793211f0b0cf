"""What the 13-deepspeed-zero checks share: the harness run's files and the grader's own
single-process AdamW run on the same batches."""
from __future__ import annotations

from pathlib import Path

import torch

from graders.plugin import say
from graders.suites.torchrun import HarnessRun, load_module, max_difference  # noqa: F401  (used by the checks)

NB = "zero"
HARNESS = Path(__file__).parent / "harness.py"
WORLD = 2
harness_module = load_module(HARNESS, "zero_harness")  # the batch layout and hyper-parameters the ranks use


class ZeroRun(HarnessRun):
    def stage(self, rank: int, stage: int) -> dict:
        report = self.report(rank)
        error = report["errors"].get(str(stage))
        if error or str(stage) not in report["stages"]:
            raise AssertionError(say(f"rank {rank} 的 ZeRO stage {stage} 出錯：{error}", f"Rank {rank} failed at ZeRO stage {stage}: {error}"))
        return report["stages"][str(stage)]

    def weights(self, stage: int) -> dict:
        self.stage(0, stage)
        return self.handle.read_safetensors(f"{self.folder}/stage{stage}.safetensors")


_reference: dict = {}


def single_process(seed: int) -> dict:
    """AdamW on every rank's micro-batches at once, in one process: what every stage must equal."""
    if seed in _reference:
        return _reference[seed]
    from common_utils.models import load_model

    h = harness_module
    ids = h.batches(seed, WORLD)
    model = load_model("llama", "tiny")
    optimizer = torch.optim.AdamW(model.parameters(), lr=h.LR)
    for step in range(h.STEPS):
        optimizer.zero_grad()
        for i in range(h.ACCUMULATION):
            for rank in range(WORLD):
                batch = ids[step, i, rank]
                (model(input_ids=batch, labels=batch).loss / (h.ACCUMULATION * WORLD)).backward()
        optimizer.step()
    _reference[seed] = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    return _reference[seed]

