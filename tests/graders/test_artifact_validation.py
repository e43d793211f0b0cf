"""Artifact validators (graders/engine/artifacts.py): a wrong-but-present artifact is caught
from its files alone, so the engine can hand later notebooks the reference's copy."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from graders.engine.artifacts import check


def _adapter(folder, keys=("base_model.model.q_proj.lora_A.weight", "base_model.model.q_proj.lora_B.weight")):
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
    save_file({k: torch.zeros(2, 2) for k in keys}, folder / "adapter_model.safetensors")
    return folder


def test_a_peft_adapter_in_safetensors_is_valid(tmp_path):
    assert check("peft-adapter", _adapter(tmp_path / "a")) is None


def test_an_adapter_saved_as_a_pickle_is_invalid(tmp_path):
    folder = _adapter(tmp_path / "a")
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    zh, en = check("peft-adapter", folder)
    assert "pickle" in en and "pickle" in zh


def test_an_adapter_without_lora_weights_is_invalid(tmp_path):
    assert check("peft-adapter", _adapter(tmp_path / "a", keys=("model.q_proj.weight",))) is not None


def test_a_truncated_safetensors_file_is_invalid(tmp_path):
    folder = _adapter(tmp_path / "a")
    (folder / "adapter_model.safetensors").write_bytes(b"\x10\x00")
    assert check("peft-adapter", folder) is not None


def test_no_validator_accepts_anything_and_an_unknown_one_is_refused(tmp_path):
    assert check(None, tmp_path) is None
    with pytest.raises(ValueError, match="unknown artifact validator 'nope'"):
        check("nope", tmp_path)
