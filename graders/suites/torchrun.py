"""What the distributed labs' suites share: a grader harness run under torchrun inside the
sandboxed kernel, the files its ranks wrote, and state_dict comparisons.

A suite copies its ``harness.py`` into the scratch folder and has the kernel launch it (the
student's own launcher in 12-ddp, common_utils' in later labs); each rank writes
``rank{R}.json`` and tensors under a fresh folder, which the checks read back through the channel.
"""
from __future__ import annotations

import importlib.util
import secrets
from pathlib import Path

import torch

from graders.plugin import say


def load_module(path: Path, name: str):
    """Import a harness file in the grader too, for its batch layout and model builders."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class HarnessRun:
    """One torchrun run of a grader harness; a missing report says the run did not finish."""

    def __init__(self, handle, folder: str, seed: int, launched: dict):
        self.handle, self.folder, self.seed, self.launched = handle, folder, seed, launched

    def report(self, rank: int) -> dict:
        path = f"{self.folder}/rank{rank}.json"
        if not self.handle.artifact_path(path).is_file():
            code, tail = self.launched.get("returncode"), str(self.launched.get("output", ""))[-600:]
            raise AssertionError(say(f"grader 的 torchrun 測試沒有跑完（return code {code!r}）。輸出結尾：{tail}",
                                     f"The grader's torchrun test did not finish (return code {code!r}). Output ends: {tail}"))
        return self.handle.read_json(path)


def run_harness(submission, notebook: str, harness: Path, launcher: str, rng, extra_args: list, timeout_s: int,
                cls=HarnessRun) -> HarnessRun:
    """Launch ``harness`` once per submission with a seed drawn from ``rng``; cached on the handle."""
    handle = submission.nb(notebook)
    cached = getattr(handle, "_torchrun_harness", None)
    if cached is not None:
        return cached
    token = secrets.token_hex(6)
    script = Path(submission.put(harness, f"grader_harness_{token}.py")).name
    seed = int(torch.randint(1, 1_000_000, (1,), generator=rng))
    folder = f"grader-harness-{token}"
    args = ["--out", folder, "--seed", str(seed), *map(str, extra_args)]
    launched = handle.call(launcher, script, args, 2, timeout_s)
    if not isinstance(launched, dict):
        launched = {"returncode": None, "output": f"{launcher} returned {type(launched).__name__}, not a dict"}
    handle._torchrun_harness = run = cls(handle, folder, seed, launched)
    return run


def max_difference(got: dict, want: dict, what: str) -> float:
    """Largest absolute difference between two state_dicts; other keys or shapes fail, saying which."""
    extra, missing = sorted(set(got) - set(want))[:3], sorted(set(want) - set(got))[:3]
    if extra or missing:
        raise AssertionError(say(f"{what} 的權重名稱不同：多了 {extra}，少了 {missing}。",
                                 f"{what} has other weight names: extra {extra}, missing {missing}."))
    for key in want:
        if got[key].shape != want[key].shape:
            raise AssertionError(say(f"{what} 的 {key} 形狀 {tuple(got[key].shape)}，應為 {tuple(want[key].shape)}。",
                                     f"{what}: {key} has shape {tuple(got[key].shape)}, expected {tuple(want[key].shape)}."))
    return max(float((got[k].float() - want[k].float()).abs().max()) for k in want)
