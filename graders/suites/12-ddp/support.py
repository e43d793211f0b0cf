"""What the 12-ddp checks share: the harness run's files, and the single-process runs the grader
computes itself to compare them with.

The harness runs where the student's code runs: the suite copies it into the scratch folder and
calls the student's own ``launch`` through the channel, so both ranks live inside the sandboxed
kernel (its pid namespace, process and memory limits); nothing multi-process runs in the grader.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from graders.plugin import say

NB = "ddp"
HERE = Path(__file__).parent
HARNESS = HERE / "harness.py"
STEPS, BATCH, MICRO, LR = 3, 24, 2, 0.3  # the harness run: steps, global batch, micro-batches, SGD lr
# fp32 on gloo, measured here: the 2-rank steps differ from the single-process ones by at most
# ~1.5e-8 (the halves of a batch are summed in another order), never bitwise for every seed.
ATOL = 1e-6


def _load_harness():
    spec = importlib.util.spec_from_file_location("ddp_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness_module = _load_harness()  # the same model and batch code the ranks run


class HarnessRun:
    """What each rank of one harness run wrote; a missing file says which phase broke."""

    def __init__(self, handle, folder: str, seed: int, launched: dict):
        self.handle, self.folder, self.seed, self.launched = handle, folder, seed, launched

    def report(self, rank: int) -> dict:
        path = f"{self.folder}/rank{rank}.json"
        if not self.handle.artifact_path(path).is_file():
            tail = str(self.launched.get("output", ""))[-600:]
            raise AssertionError(say(f"grader 的 torchrun 測試沒有跑完（return code {self.launched.get('returncode')!r}）。"
                                     f"輸出結尾：{tail}",
                                     f"The grader's torchrun test did not finish (return code "
                                     f"{self.launched.get('returncode')!r}). Output ends: {tail}"))
        return self.handle.read_json(path)

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


def max_difference(got: dict, want: dict, what: str) -> float:
    """Largest absolute difference between two state_dicts; different keys or shapes fail."""
    if set(got) != set(want):
        raise AssertionError(say(f"{what} 的權重名稱不同：多了 {sorted(set(got) - set(want))}，少了 {sorted(set(want) - set(got))}。",
                                 f"{what} has other weight names: extra {sorted(set(got) - set(want))}, "
                                 f"missing {sorted(set(want) - set(got))}."))
    for key in want:
        if got[key].shape != want[key].shape:
            raise AssertionError(say(f"{what} 的 {key} 形狀 {tuple(got[key].shape)}，應為 {tuple(want[key].shape)}。",
                                     f"{what}: {key} has shape {tuple(got[key].shape)}, expected {tuple(want[key].shape)}."))
    return max(float((got[k].float() - want[k].float()).abs().max()) for k in want)
