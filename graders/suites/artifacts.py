"""Trusted loading of what a student's notebook saved, shared by the grader suites.

Only JSON and safetensors files are copied out of the student's scratch folder (size-capped);
pickle files are refused, and nothing here runs code the student wrote.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from graders.plugin import say

MAX_ARTIFACT_BYTES = 32 * 2**30  # a merged 7B model in fp32 safetensors is about 27 GiB
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
ALLOWED = (".json", ".safetensors", ".txt", ".model", ".jinja")


def copy_safe(folder: Path, dest: Path) -> Path:
    """Copy the JSON/safetensors files of ``folder`` into ``dest``; refuse pickles and symlinks."""
    if not folder.is_dir():
        raise AssertionError(say(f"找不到 {folder.name}/：notebook 沒有存檔嗎？", f"{folder.name}/ is missing: was it saved?"))
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            raise AssertionError(say(f"{path.name} 是 symlink，不接受。", f"{path.name} is a symlink; refused."))
        if path.suffix in PICKLE_SUFFIXES:
            raise AssertionError(say(f"{folder.name}/{path.name} 是 pickle 格式：請改用 safetensors。",
                                     f"{folder.name}/{path.name} is a pickle file: save with safetensors."))
        if path.is_file() and path.suffix in ALLOWED:
            total += path.stat().st_size
            if total > MAX_ARTIFACT_BYTES:
                raise AssertionError(say(f"{folder.name}/ 太大。", f"{folder.name}/ is too large."))
            shutil.copy2(path, dest / path.name)
    return dest


def read_json_artifact(handle, relpath: str):
    path = handle.artifact_path(relpath)
    if not path.is_file():
        raise AssertionError(say(f"找不到 {relpath}：產生它的 cell 是否出錯？", f"{relpath} is missing: did its cell fail?"))
    if path.stat().st_size > 16 * 2**20:
        raise AssertionError(say(f"{relpath} 太大。", f"{relpath} is too large."))
    return json.loads(path.read_text(encoding="utf-8"))


def probe_ids(profile) -> torch.Tensor:
    from common_utils.models import load_tokenizer

    tok = load_tokenizer(profile)
    return torch.tensor([tok("### Instruction:\n把單字翻成英文\n\n### Input:\n狗\n\n### Response:\n")["input_ids"]])
