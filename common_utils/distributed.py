"""A toy classifier and its data for the distributed-training labs (12-ddp).

Small on purpose: two processes on a 2-core CPU train it in a second, so what the lab teaches
(sharding, broadcast, all-reduce, no_sync) is not drowned in compute. The same functions build
the model and the batches in a student's ranks, in the grader's harness and in the grader's
single-process reference run, so equal seeds give bit-identical starting points everywhere.
"""
from __future__ import annotations

import torch
from torch import nn

FEATURES, HIDDEN, CLASSES = 16, 33, 5  # odd sizes: nothing lines up by accident


def toy_model(seed: int) -> nn.Module:
    """An MLP initialised from ``seed`` alone (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, CLASSES))


def toy_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled points: class = argmax of a fixed random projection, so it is learnable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=g)
    w = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(1234))
    return x, (x @ w).argmax(dim=1)


def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, labels)
