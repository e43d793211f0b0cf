"""Fixtures of the 06-bitfit suite: the grader's scratch folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.sandbox.scratch import scratch_dir


@pytest.fixture
def grader_tmp():
    with scratch_dir("grader") as tmp:
        yield Path(tmp)
