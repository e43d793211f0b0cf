"""Fixtures of the 01-lora suite: trusted base models and adapter loading in the grader."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.plugin import say
from graders.sandbox.scratch import scratch_dir
from graders.suites.artifacts import copy_safe


@pytest.fixture
def grader_tmp():
    with scratch_dir("grader") as tmp:
        yield Path(tmp)


@pytest.fixture
def base_model(profile):
    from common_utils.models import load_model

    return load_model("llama", profile).eval()


@pytest.fixture
def load_adapter(base_model, grader_tmp):
    """Load a saved adapter folder onto a fresh full-precision base, in the grader."""
    from peft import PeftModel

    def load(folder: Path):
        safe = copy_safe(folder, grader_tmp / f"adapter-{len(list(grader_tmp.iterdir()))}")
        if not (safe / "adapter_model.safetensors").is_file():
            raise AssertionError(say("adapter 沒有 adapter_model.safetensors：請用 save_pretrained 存成 safetensors。",
                                     "The adapter has no adapter_model.safetensors: save it with save_pretrained."))
        return PeftModel.from_pretrained(base_model, str(safe)).eval()

    return load


