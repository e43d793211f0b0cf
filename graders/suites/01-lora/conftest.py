"""Fixtures of the 01-lora suite: adapter loading (peft_tester)."""
from __future__ import annotations

import pytest

from graders.suites import peft_tester


@pytest.fixture
def load_adapter(profile, grader_tmp):
    """Load a saved adapter folder onto a fresh full-precision base, in the grader."""
    from common_utils.models import load_model

    return lambda folder: peft_tester.load_adapter(folder, load_model("llama", profile).eval(), grader_tmp)
