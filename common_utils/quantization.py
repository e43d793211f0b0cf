"""bitsandbytes quantization settings, and the CPU safeguard QLoRA needs (see FACTS.md).

On CPUs with AVX512-BF16, a no-grad forward in eval mode repacks ``Linear4bit`` weights into a
CPU layout after which LoRA parameters get no gradient and the loss stays flat, silently.
``safeguard_4bit`` turns that path off on every 4-bit layer.
"""
from __future__ import annotations

import torch

QUANTIZATION_MODES = ("none", "int8", "fp4", "nf4")


def _bnb():
    try:
        import bitsandbytes as bnb
    except Exception as err:  # ImportError, or RuntimeError on a broken CUDA setup
        raise RuntimeError(f"quantized loading needs bitsandbytes, which is not usable here ({err}); "
                           f"use quantization='none' or install the 'quant' extra") from None
    return bnb


def quantization_config(mode: str):
    """The transformers BitsAndBytesConfig for ``mode`` (int8, fp4 or nf4)."""
    from transformers import BitsAndBytesConfig

    if mode not in QUANTIZATION_MODES[1:]:
        raise ValueError(f"unknown quantization {mode!r}; valid modes: {', '.join(QUANTIZATION_MODES[1:])}")
    _bnb()
    if mode == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    # fp32 compute on CPU; bf16 on GPUs that have it (the QLoRA paper's setting).
    compute = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=mode, bnb_4bit_compute_dtype=compute,
                              bnb_4bit_use_double_quant=True)


def safeguard_4bit(model: torch.nn.Module) -> int:
    """Disable the AVX512-BF16 repacking on every 4-bit layer; returns how many were changed."""
    bnb = _bnb()
    changed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed
