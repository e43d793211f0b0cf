"""Merge a LoRA adapter into its full-precision base and save a plain safetensors model.

Refuses a quantized (4-bit or 8-bit) base: merging W + (alpha/r) B A into quantized weights is
wrong, one of the original course's defects.
"""
from __future__ import annotations

from pathlib import Path

import torch


def is_quantized(model: torch.nn.Module) -> bool:
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        return True
    return any(type(m).__name__ in ("Linear4bit", "Linear8bitLt") for m in model.modules())


def assert_no_adapter_modules(model: torch.nn.Module) -> None:
    left = [n for n, _ in model.named_parameters() if "lora_" in n]
    if left:
        raise AssertionError(f"{len(left)} LoRA parameters are still in the model, e.g. {left[0]}")


def merge_and_save(peft_model, out_dir: str | Path) -> Path:
    """Merge the adapter into the base, check nothing of it is left, save as safetensors."""
    if is_quantized(peft_model):
        raise ValueError("refusing to merge into a quantized model: load the base in full precision "
                         "(quantization='none') and apply the adapter to it, then merge")
    merged = peft_model.merge_and_unload()
    assert_no_adapter_modules(merged)
    out = Path(out_dir)
    merged.save_pretrained(out, safe_serialization=True)
    return out
