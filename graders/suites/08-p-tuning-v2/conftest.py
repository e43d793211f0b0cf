"""Fixtures of the 08-p-tuning-v2 suite: P-tuning v2 configurations the grader draws."""
from __future__ import annotations

import pytest


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
