"""The course's training loop and batch builders, for the labs after 01-lora.

01-lora teaches the loop (students write it there). The later labs teach a PEFT method, not the
loop again, so their locked cells call ``train_steps`` with ``sentence_batches`` (classification) or
``instruction_batches`` (instruction tuning) from here. Batches
are moved to the model's device here, once, so a lab runs unchanged under ``tiny`` on a CPU and
under ``full`` on a GPU runner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import torch
from torch import nn

__all__ = ["instruction_batches", "model_device", "sentence_batches", "to_device", "train_steps"]


def model_device(model: nn.Module) -> torch.device:
    """Where the model's first parameter lives (a PEFT wrapper's base included)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_device(batch: dict, device: torch.device | str) -> dict:
    """The batch with every tensor on ``device`` (other values as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train_steps(model: nn.Module, batches: Sequence[dict], max_steps: int, lr: float,
                *, weight_decay: float = 0.0) -> list[float]:
    """AdamW on the trainable parameters for ``max_steps`` steps, cycling through ``batches``.

    Each step is forward, backward, step, zero_grad; returns each step's loss as a float.
    Refuses a model with nothing to train (a frozen model would "train" without moving)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameter: freeze less, or wrap it with the method first")
    if not batches:
        raise ValueError("no batch to train on")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    device = model_device(model)
    model.train()
    losses = []
    for _, batch in zip(range(max_steps), itertools.cycle(batches)):
        loss = model(**to_device(batch, device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def sentence_batches(rows: Iterable[dict], tokenizer, batch_size: int, *, text: Sequence[str],
                     seed: int = 0, max_length: int = 64) -> list[dict]:
    """Shuffled, padded classification batches: ``input_ids``, ``attention_mask``, ``labels``.

    ``text`` names the row's text fields: one (``["text"]``) or a sentence pair
    (``["sentence1", "sentence2"]``). The order is seeded, so a reference and a submission see
    the same batches."""
    if len(text) not in (1, 2):
        raise ValueError(f"text names one field or a pair, got {list(text)}")
    rows = list(rows)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    batches = []
    for i in range(0, len(order), batch_size):
        chunk = [rows[j] for j in order[i:i + batch_size]]
        fields = [[r[name] for r in chunk] for name in text]
        enc = tokenizer(*fields, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                        "labels": torch.tensor([r["label"] for r in chunk])})
    return batches


def instruction_batches(rows: Sequence[dict], tokenizer, batch_size: int, max_steps: int, *,
                        template: str = "alpaca", max_length: int = 128, seed: int = 0) -> list[dict]:
    """``max_steps`` shuffled instruction-tuning batches (prompt tokens masked with -100 in the labels,
    right-padded to a multiple of 8), the shuffled rows repeated when one pass is not enough. The
    order is seeded, so a reference and a submission see the same batches."""
    from torch.utils.data import DataLoader

    from common_utils.instruct import InstructionDataCollator, InstructionDataset

    dataset = InstructionDataset(list(rows), tokenizer, template=template, max_length=max_length)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                        collate_fn=InstructionDataCollator(tokenizer, pad_to_multiple_of=8),
                        generator=torch.Generator().manual_seed(seed))
    return [batch for _, batch in zip(range(max_steps), itertools.cycle(loader))]
