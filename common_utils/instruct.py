"""Instruction tuning data: prompt templates, a dataset that masks prompt tokens, a collator.

Templates: ``alpaca`` (instruction / input / response), ``dolly`` (instruction / context /
response) and ``chatml`` (the tokenizer's chat template, ``<|im_start|>`` turns).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

IGNORE_INDEX = -100  # CrossEntropyLoss ignores these label positions
TEMPLATES = ("alpaca", "dolly", "chatml")


def format_prompt(example: dict, template: str = "alpaca") -> tuple[str, str]:
    """(prompt, response) for one example: the model learns the response only."""
    instruction = example.get("instruction", "")
    context = (example.get("input") or example.get("context") or "").strip()
    response = example.get("output", example.get("response", ""))
    if template == "alpaca":
        if context:
            return f"### Instruction:\n{instruction}\n\n### Input:\n{context}\n\n### Response:\n", response
        return f"### Instruction:\n{instruction}\n\n### Response:\n", response
    if template == "dolly":
        block = f"\n\n### Context:\n{context}" if context else ""
        return f"### Instruction:\n{instruction}{block}\n\n### Response:\n", response
    if template == "chatml":
        user = f"{instruction}\n{context}" if context else instruction
        return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n", f"{response}<|im_end|>"
    raise ValueError(f"unknown template {template!r}; valid templates: {', '.join(TEMPLATES)}")


class InstructionDataset(Dataset):
    """Tokenized examples whose prompt tokens carry label -100; rows longer than ``max_length``
    are dropped (not cut, which would teach a truncated answer) and counted in ``dropped``."""

    def __init__(self, rows: list[dict], tokenizer, template: str = "alpaca", max_length: int = 256,
                 mask_prompt: bool = True):
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r}; valid templates: {', '.join(TEMPLATES)}")
        self.examples: list[dict] = []
        self.dropped = 0
        for row in rows:
            prompt, response = format_prompt(row, template)
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            r_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            if len(p_ids) + len(r_ids) > max_length:
                self.dropped += 1
                continue
            labels = ([IGNORE_INDEX] * len(p_ids) if mask_prompt else list(p_ids)) + r_ids
            self.examples.append({"input_ids": p_ids + r_ids, "labels": labels})

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.examples[index]


@dataclass
class InstructionDataCollator:
    """Pad a batch to its longest example (optionally to a multiple of ``pad_to_multiple_of``):
    input_ids with the pad token, labels with -100, and an attention mask."""

    tokenizer: object
    pad_to_multiple_of: int | None = None

    def __call__(self, batch: list[dict]) -> dict:
        longest = max(len(ex["input_ids"]) for ex in batch)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        pad = self.tokenizer.pad_token_id
        ids, labels, mask = [], [], []
        for ex in batch:
            n = len(ex["input_ids"])
            ids.append(list(ex["input_ids"]) + [pad] * (longest - n))
            labels.append(list(ex["labels"]) + [IGNORE_INDEX] * (longest - n))
            mask.append([1] * n + [0] * (longest - n))
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}
