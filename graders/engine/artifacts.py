"""Validation of the artifacts one notebook hands to the next, so that one mistake costs once.

An ``[[artifacts]]`` entry of assignment.toml may name a validator (``validate = "peft-adapter"``).
Before a notebook that needs the artifact runs, the engine asks the validator about the
student's copy; a copy that fails is moved aside (``<path>.invalid``) and the reference's copy is
put in its place, exactly as for a missing one. The producer's own checks still see the
artifact as not produced; the later notebooks are graded on a valid input.

A validator reads files only (JSON headers, safetensors headers); it never unpickles and never
runs student code. It returns ``None`` for a valid artifact, else ``(zh, en)`` saying why.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Callable

Problem = tuple[str, str] | None
VALIDATORS: dict[str, Callable[[Path], Problem]] = {}
PICKLES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def validator(name: str):
    def register(fn: Callable[[Path], Problem]):
        VALIDATORS[name] = fn
        return fn
    return register


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names in a safetensors header (raises ValueError on a malformed file)."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("too short")
        (n,) = struct.unpack("<Q", head)
        if n > 100 * 2**20:
            raise ValueError("header too large")
        header = json.loads(f.read(n))
    return [k for k in header if k != "__metadata__"]


def _pickles(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in PICKLES)


@validator("peft-adapter")
def peft_adapter(folder: Path) -> Problem:
    """A peft LoRA adapter: adapter_config.json, adapter_model.safetensors with lora_A/lora_B, no pickles."""
    if not folder.is_dir():
        return ("不是資料夾", "not a folder")
    if pickles := _pickles(folder):
        return (f"含有 pickle 檔 {pickles}，不是 safetensors", f"holds pickle files {pickles}, not safetensors")
    config, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config.is_file() or not weights.is_file():
        return ("缺少 adapter_config.json 或 adapter_model.safetensors",
                "adapter_config.json or adapter_model.safetensors is missing")
    try:
        json.loads(config.read_text(encoding="utf-8"))
        keys = safetensors_keys(weights)
    except (ValueError, UnicodeDecodeError, OSError):
        return ("檔案格式損壞", "a file is malformed")
    if not any("lora_A" in k for k in keys) or not any("lora_B" in k for k in keys):
        return ("safetensors 裡沒有 lora_A / lora_B 權重", "the safetensors file holds no lora_A / lora_B weights")
    return None


def check(kind: str | None, path: Path) -> Problem:
    """Ask the validator named ``kind`` (None: any existing artifact is accepted)."""
    if kind is None:
        return None
    if kind not in VALIDATORS:
        raise ValueError(f"unknown artifact validator {kind!r}; known: {', '.join(VALIDATORS)}")
    return VALIDATORS[kind](path)
