"""Fixtures of the 08-p-tuning-v2 suite: the grader's scratch folder, P-tuning v2 configurations it draws."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.sandbox.scratch import scratch_dir


@pytest.fixture
def grader_tmp():
    with scratch_dir("grader") as tmp:
        yield Path(tmp)


@pytest.fixture
def draw_config():
    """A P-tuning v2 configuration (SEQ_CLS) of grader-drawn length, with or without projection."""
    import torch
    from peft import PrefixTuningConfig

    def draw(rng):
        return PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=int(torch.randint(3, 12, (1,), generator=rng)),
                                  prefix_projection=bool(torch.randint(0, 2, (1,), generator=rng)),
                                  encoder_hidden_size=int(torch.randint(8, 48, (1,), generator=rng)))

    return draw
