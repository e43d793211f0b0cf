"""The grader's own measurements for lab 1.1, written once here and used by both test files.

They follow the notebook's definitions: memory is weights + gradients + AdamW's two fp32 states per
trainable parameter + the storages autograd saves for backward (each once, parameters excluded);
accuracy is right rows over all rows in eval mode.
"""
from __future__ import annotations

import torch

FIELDS = ("weights", "gradients", "optimizer", "activations", "total")


def _on(model, batch: dict) -> dict:
    from common_utils.training import model_device, to_device

    return to_device(batch, model_device(model))


def activation_bytes(model, batch: dict) -> int:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**_on(model, batch))
    return sum(seen.values())


def training_memory(model, batch: dict) -> dict:
    trainable = [p for p in model.parameters() if p.requires_grad]
    memory = {"weights": sum(p.numel() * p.element_size() for p in model.parameters()),
              "gradients": sum(p.numel() * p.element_size() for p in trainable),
              "optimizer": sum(8 * p.numel() for p in trainable),
              "activations": activation_bytes(model, batch)}
    return {**memory, "total": sum(memory.values())}


def accuracy(model, batches: list[dict]) -> float:
    model.eval()
    right = total = 0
    with torch.no_grad():
        for b in (_on(model, b) for b in batches):
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            right += int((logits.argmax(-1) == b["labels"]).sum())
            total += len(b["labels"])
    return right / total


def counts(model) -> tuple[int, int]:
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def seeded_model(method: str, profile: str):
    """The method's model as the notebook builds it for the table (seed 0)."""
    from common_utils.peft_setup import compared_model

    torch.manual_seed(0)
    return compared_model(method, profile)


def data(profile: str) -> tuple[list[dict], list[dict]]:
    """The notebook's train and held-out batches (the same seed and order)."""
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_tokenizer
    from common_utils.training import sentence_batches

    tok = load_tokenizer(profile, family="bert")
    return tuple(sentence_batches(load_course_dataset("sentiment", profile, split=split), tok, 16, text=["text"])
                 for split in ("train", "held_out"))
