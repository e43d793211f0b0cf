"""TinyMLP: fc1 -> ReLU -> fc2, checked from the student's own weights."""
import pytest
import torch

from graders.plugin import say

SHAPES = {"fc1.weight": (16, 8), "fc1.bias": (16,), "fc2.weight": (2, 16), "fc2.bias": (2,)}


@pytest.mark.check(points=1, cell="test-tiny-mlp",
                   title={"zh": "TinyMLP 的層與形狀", "en": "TinyMLP layers and shapes"},
                   hint={"zh": "兩層分別命名為 fc1、fc2：nn.Linear(d_in, d_hidden)、nn.Linear(d_hidden, d_out)。",
                         "en": "Name the layers fc1 and fc2: nn.Linear(d_in, d_hidden), nn.Linear(d_hidden, d_out)."})
def test_layer_shapes(submission):
    state = submission.value("model")
    got = {k: tuple(v.shape) for k, v in state.items()}
    assert got == SHAPES, say(f"model 的參數應為 {SHAPES}，實際 {got}。", f"model's parameters should be {SHAPES}, got {got}.")


@pytest.mark.check(points=2, cell="test-tiny-mlp", visibility="hidden",
                   title={"zh": "TinyMLP 的前向計算", "en": "TinyMLP forward pass"},
                   hint={"zh": "forward 應為 fc2(relu(fc1(x)))：ReLU 只在兩層之間。",
                         "en": "forward should be fc2(relu(fc1(x))): one ReLU between the layers."})
def test_logits_follow_from_weights(submission, rng):
    state = submission.value("model")
    assert {k: tuple(v.shape) for k, v in state.items()} == SHAPES
    x = torch.randn(6, 8, generator=rng)
    hidden = torch.relu(x @ state["fc1.weight"].T + state["fc1.bias"])
    want = hidden @ state["fc2.weight"].T + state["fc2.bias"]
    got = submission.call("tiny_mlp_logits", x)
    assert torch.allclose(got, want, atol=1e-5)
