"""Fixtures of the 11-peft-comparison suite (lab 1.1): the grader's scratch folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.sandbox.scratch import scratch_dir


@pytest.fixture
def grader_tmp():
    with scratch_dir("grader") as tmp:
        yield Path(tmp)
