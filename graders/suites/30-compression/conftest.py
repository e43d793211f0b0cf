"""Fixtures of the 30-compression suite: grader-drawn tensors and the profile's models, built in
the grader; the expected figures come from closed forms, bitsandbytes, or the reference's run."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch


@pytest.fixture
def grader_tmp():
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        yield Path(tmp)


@pytest.fixture
def llama(profile):
    from common_utils.models import load_model

    return load_model("llama", profile).eval()


def _correlated_inputs(rng: torch.Generator, n: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, cols) samples of one distribution (calibration, held-out) with correlated columns and a
    decaying spectrum, like a real layer's inputs."""
    mix = torch.randn(cols, cols, generator=rng) @ torch.diag(torch.logspace(-2, 0.5, cols)) \
        @ torch.randn(cols, cols, generator=rng) / cols ** 0.5
    return torch.randn(n, cols, generator=rng) @ mix, torch.randn(n, cols, generator=rng) @ mix


def _output_error(W: torch.Tensor, Q: torch.Tensor, X: torch.Tensor) -> float:
    """Relative squared error of a layer's output on X: ||X (W - Q)^T||^2 / ||X W^T||^2."""
    return float((X @ (W - Q).T).pow(2).sum() / (X @ W.T).pow(2).sum())


# The suite's modules cannot import this file (its folder name is not a package name): fixtures hand the helpers over.
@pytest.fixture
def correlated_inputs():
    return _correlated_inputs


@pytest.fixture
def output_error():
    return _output_error
