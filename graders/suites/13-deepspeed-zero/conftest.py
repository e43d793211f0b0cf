"""Fixtures of the 13-deepspeed-zero suite: one torchrun run of the grader's harness per
submission, launched from inside the sandboxed kernel (``launch_torchrun`` of common_utils)."""
from __future__ import annotations

import importlib

import pytest

from graders.suites.torchrun import run_harness

support = importlib.import_module("graders.suites.13-deepspeed-zero.support")


@pytest.fixture
def harness(submission, rng) -> support.ZeroRun:
    return run_harness(submission, support.NB, support.HARNESS, "launch_torchrun", rng, [], 280, cls=support.ZeroRun)
