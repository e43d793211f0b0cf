"""Fixtures of the 03-prompt-tuning suite: adapters the grader makes."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def make_prompt_adapter(profile, grader_tmp):
    """A soft prompt the grader makes (rows of the vocabulary, perturbed), saved with peft; returns its folder."""
    import torch
    from peft import PromptTuningConfig, get_peft_model

    from common_utils.models import load_model

    def make(rng, name: str, num_virtual_tokens: int) -> Path:
        base = load_model("llama", profile).eval()
        model = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens))
        vocab = base.get_input_embeddings().weight.detach().cpu()
        ids = torch.randint(0, vocab.shape[0], (num_virtual_tokens,), generator=rng)
        with torch.no_grad():
            model.prompt_encoder["default"].embedding.weight.copy_(
                vocab[ids] * 3 + torch.randn(num_virtual_tokens, vocab.shape[1], generator=rng))
        folder = grader_tmp / "made" / name
        model.save_pretrained(str(folder))  # safetensors by default
        return folder

    return make
