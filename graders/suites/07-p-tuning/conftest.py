"""Fixtures of the 07-p-tuning suite: P-tuning configurations the grader draws."""
from __future__ import annotations

import pytest


@pytest.fixture
def draw_config():
    """A P-tuning configuration of grader-drawn sizes and encoder type (SEQ_CLS)."""
    import torch
    from peft import PromptEncoderConfig

    def draw(rng):
        return PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=int(torch.randint(3, 12, (1,), generator=rng)),
                                   encoder_hidden_size=int(torch.randint(8, 48, (1,), generator=rng)),
                                   encoder_reparameterization_type=("MLP", "LSTM")[int(torch.randint(0, 2, (1,), generator=rng))])

    return draw
