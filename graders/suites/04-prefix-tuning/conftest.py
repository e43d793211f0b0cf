"""Fixtures of the 04-prefix-tuning suite: prefixes the grader makes, and
peft's prefix tuning as the oracle (a model of any size, weights the grader draws, the prefix peft builds)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch


@pytest.fixture
def make_prefix_adapter(profile, grader_tmp):
    """A prefix the grader makes (every key and value drawn at random), saved with peft; returns its folder."""
    from peft import PrefixTuningConfig, get_peft_model

    from common_utils.models import load_model

    def make(rng, name: str, num_virtual_tokens: int) -> Path:
        model = get_peft_model(load_model("gpt2", profile).eval(),
                               PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens))
        weight = model.prompt_encoder["default"].embedding.weight
        with torch.no_grad():
            weight.copy_(2 * torch.randn(weight.shape, generator=rng))  # far from zero: the base cannot pass
        folder = grader_tmp / "made" / name
        model.save_pretrained(str(folder))  # safetensors by default
        return folder

    return make


def peft_prefix_model(sizes: dict, base=None):
    """peft's prefix tuning on ``base`` (default: a GPT-2 of ``sizes``), ready to take drawn weights."""
    from peft import PrefixTuningConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    if base is None:
        hidden = sizes["num_heads"] * sizes["head_dim"]
        base = GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=16, n_embd=hidden, n_layer=sizes["num_layers"],
                                          n_head=sizes["num_heads"]))
    config = PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=sizes["num_virtual_tokens"],
                                prefix_projection=sizes["prefix_projection"],
                                encoder_hidden_size=sizes["encoder_hidden_size"])
    return get_peft_model(base.eval(), config).eval()


def draw_weights(model, rng, scale: float = 1.0) -> dict:
    """Every weight of ``model``'s prefix encoder drawn by the grader; returns the encoder's state dict."""
    encoder = model.prompt_encoder["default"]
    with torch.no_grad():
        for p in encoder.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=rng))
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


def peft_kv(model, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """peft's own prefix: the cache its get_prompt builds, per layer (key, value)."""
    with torch.no_grad():
        cache = model.get_prompt(batch)
    return [(layer.keys.detach().clone(), layer.values.detach().clone()) for layer in cache.layers]


@pytest.fixture
def peft_prefix():
    """The oracle's functions: ``model(sizes, base=None)``, ``draw(model, rng, scale)``, ``kv(model, batch)``."""
    return SimpleNamespace(model=peft_prefix_model, draw=draw_weights, kv=peft_kv)
