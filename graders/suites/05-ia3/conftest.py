"""Fixtures of the 05-ia3 suite: the grader's scratch folder."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.sandbox.scratch import scratch_dir


@pytest.fixture
def grader_tmp():
    with scratch_dir("grader") as tmp:
        yield Path(tmp)
