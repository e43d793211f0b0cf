"""Fixtures of the 20-inference-serving suite: the grader's own model and tokenizer."""
import pytest

from graders.suites.inference import grader_model, grader_tokenizer


@pytest.fixture
def model(profile):
    return grader_model(profile)


@pytest.fixture
def tokenizer(profile):
    return grader_tokenizer(profile)
