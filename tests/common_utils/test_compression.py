"""The compression lab's measuring tape: text splits, perplexity, layer inputs, storage sizes."""
from __future__ import annotations

import math

import pytest
import torch

from common_utils.compression import (SHAPES, accuracy, calibration_ids, decoder_linears, encode, heldout_ids,
                                      linear_inputs, perplexity, sentiment_split, storage_bytes)
from common_utils.datasets import load_course_dataset
from common_utils.models import load_model


@pytest.fixture(scope="module")
def llama():
    return load_model("llama", "tiny").eval()


def test_calibration_and_heldout_have_their_shapes_and_differ():
    calib, held = calibration_ids("tiny"), heldout_ids("tiny")
    assert tuple(calib.shape) == SHAPES["tiny"]["calibration"] and tuple(held.shape) == SHAPES["tiny"]["heldout"]
    assert not torch.equal(calib, held)


def test_perplexity_is_exp_of_the_mean_token_loss(llama):
    ids = heldout_ids("tiny")[:2]
    with torch.no_grad():
        loss = llama(input_ids=ids, labels=ids).loss  # transformers shifts the labels itself
    assert perplexity(llama, ids) == pytest.approx(math.exp(float(loss)), rel=1e-5)


def test_linear_inputs_cover_every_decoder_linear_once_per_token(llama):
    ids = calibration_ids("tiny")[:3]
    inputs = linear_inputs(llama, ids, batch_size=2)
    layers = decoder_linears(llama)
    assert set(inputs) == set(layers) and "lm_head" not in layers
    assert all(tuple(inputs[n].shape) == (ids.numel(), layers[n].in_features) for n in layers)


def test_storage_sizes_order_the_formats_and_refuse_unknown_ones(llama):
    sizes = {m: storage_bytes(llama, m) for m in ("fp32", "gptq-4bit", "nf4", "wanda", "wanda-2of4")}
    numel = sum(m.weight.numel() for m in decoder_linears(llama).values())
    assert sizes["fp32"] == 4 * numel and sizes["nf4"] < sizes["wanda"] < sizes["fp32"]
    with pytest.raises(ValueError, match="valid"):
        storage_bytes(llama, "zip")


def test_sentiment_split_holds_out_every_fifth_row():
    rows = load_course_dataset("sentiment", "tiny")
    train, held = sentiment_split("tiny")
    assert held == rows[::5] and len(train) + len(held) == len(rows)


def test_accuracy_counts_right_labels():
    _, held = sentiment_split("tiny")
    model = load_model("bert", "tiny").eval()
    with torch.no_grad():
        logits = model(**{k: v for k, v in encode(held, "tiny").items() if k != "labels"}).logits
    right = sum(int(p) == r["label"] for p, r in zip(logits.argmax(-1), held))
    assert accuracy(model, held, "tiny") == pytest.approx(right / len(held))
