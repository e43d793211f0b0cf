"""Fixtures of the 12-ddp suite: one torchrun run of the grader's harness per submission.

The harness runs where the student's code runs: the suite copies it into the scratch folder and
calls the student's own ``launch`` through the channel, so both ranks live inside the sandboxed
kernel (its pid namespace, process and memory limits); nothing multi-process runs in the grader.
"""
from __future__ import annotations

import importlib
import secrets
import tempfile
from pathlib import Path

import pytest
import torch

support = importlib.import_module("graders.suites.12-ddp.support")


@pytest.fixture
def harness(submission, rng) -> support.HarnessRun:
    """Run the harness once per submission under the student's ``launch``; cached on the handle."""
    handle = submission.nb(support.NB)
    cached = getattr(handle, "_ddp_harness", None)
    if cached is not None:
        return cached
    token = secrets.token_hex(6)
    script = Path(submission.put(support.HARNESS, f"grader_harness_{token}.py")).name
    seed = int(torch.randint(1, 1_000_000, (1,), generator=rng))
    folder = f"grader-harness-{token}"
    args = ["--out", folder, "--seed", seed, "--steps", support.STEPS, "--batch", support.BATCH, "--micro", support.MICRO, "--lr", support.LR]
    launched = handle.call("launch", script, [str(a) for a in args], 2, 240)
    if not isinstance(launched, dict):
        launched = {"returncode": None, "output": f"launch returned {type(launched).__name__}, not a dict"}
    run = support.HarnessRun(handle, folder, seed, launched)
    handle._ddp_harness = run
    return run


@pytest.fixture
def grader_tmp():
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        (Path(tmp) / "empty").mkdir()
        yield Path(tmp)
