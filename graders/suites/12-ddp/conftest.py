"""Fixtures of the 12-ddp suite: one torchrun run of the grader's harness per submission.

The harness runs where the student's code runs: the suite copies it into the scratch folder and
calls the student's own ``launch`` through the channel, so both ranks live inside the sandboxed
kernel (its pid namespace, process and memory limits); nothing multi-process runs in the grader.
"""
from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import pytest

from graders.suites.torchrun import run_harness

support = importlib.import_module("graders.suites.12-ddp.support")


@pytest.fixture
def harness(submission, rng) -> support.DdpRun:
    args = ["--steps", support.STEPS, "--batch", support.BATCH, "--micro", support.MICRO, "--lr", support.LR]
    return run_harness(submission, support.NB, support.HARNESS, "launch", rng, args, 240, cls=support.DdpRun)


@pytest.fixture
def grader_tmp():
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        (Path(tmp) / "empty").mkdir()
        yield Path(tmp)
