"""The shared training loop and batch builder of the labs after 01-lora (common_utils.training)."""
from __future__ import annotations

import pytest
import torch

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.training import instruction_batches, sentence_batches, to_device, train_steps


def _bert_batches(batch_size=16):
    rows = load_course_dataset("paraphrase", "tiny", split="train")
    return sentence_batches(rows, load_tokenizer("tiny"), batch_size, text=["sentence1", "sentence2"])


def test_sentence_batches_are_seeded_padded_and_labelled():
    first, again = _bert_batches(), _bert_batches()
    assert len(first) == len(again) and all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, again))
    batch = first[0]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == batch["attention_mask"].shape and batch["labels"].shape == (16,)
    assert (batch["attention_mask"] == 0).any(), "a shuffled batch of different lengths is padded"
    other = sentence_batches(load_course_dataset("paraphrase", "tiny", split="train"), load_tokenizer("tiny"), 16,
                             text=["sentence1", "sentence2"], seed=1)
    assert not torch.equal(other[0]["labels"], batch["labels"]) or not torch.equal(other[0]["input_ids"], batch["input_ids"])


def test_sentence_batches_refuse_three_fields():
    with pytest.raises(ValueError, match="one field or a pair"):
        sentence_batches([], load_tokenizer("tiny"), 4, text=["a", "b", "c"])


def test_train_steps_trains_only_what_requires_grad_and_lowers_the_loss():
    torch.manual_seed(0)
    model = load_model("bert", "tiny", for_training=True)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier") or ".bias" in name)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    losses = train_steps(model, _bert_batches(), 60, 1e-2)
    assert len(losses) == 60 and all(isinstance(x, float) for x in losses)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


def test_train_steps_refuses_a_frozen_model_and_no_batches():
    model = load_model("bert", "tiny")
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        train_steps(model, _bert_batches(), 1, 1e-3)
    model.classifier.weight.requires_grad_(True)
    with pytest.raises(ValueError, match="no batch"):
        train_steps(model, [], 1, 1e-3)


def test_to_device_moves_tensors_and_keeps_the_rest():
    batch = to_device({"input_ids": torch.ones(2, 3, dtype=torch.long), "name": "x"}, "meta")
    assert batch["input_ids"].device.type == "meta" and batch["name"] == "x"


def test_instruction_batches_are_seeded_masked_and_as_many_as_asked():
    rows = load_course_dataset("instructions", "tiny", split="train")[:20]
    first, again = (instruction_batches(rows, load_tokenizer("tiny"), 8, 7) for _ in range(2))
    assert len(first) == 7, "three batches of 20 rows, cycled to seven steps"
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, again))
    batch = first[0]
    assert batch["input_ids"].shape == batch["labels"].shape and batch["input_ids"].shape[1] % 8 == 0
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any(), "prompt masked, response kept"
