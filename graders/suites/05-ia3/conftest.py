"""Fixtures of the 05-ia3 suite: IA3 adapters the grader makes."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def make_ia3_adapter(profile, grader_tmp):
    """An IA3 adapter the grader makes (the course's placement, every vector drawn from [0.5, 1.5)),
    saved with peft; returns its folder."""
    import torch
    from peft import get_peft_model

    from common_utils.models import load_model
    from common_utils.peft_setup import make_peft_config

    def make(rng, name: str) -> Path:
        model = get_peft_model(load_model("llama", profile).eval(), make_peft_config("ia3"))
        with torch.no_grad():
            for param in (p for n, p in model.named_parameters() if "ia3_l" in n):
                param.copy_(torch.rand(param.shape, generator=rng) + 0.5)  # far from ones: the base cannot pass
        folder = grader_tmp / "made" / name
        model.save_pretrained(str(folder))  # safetensors by default
        return folder

    return make
