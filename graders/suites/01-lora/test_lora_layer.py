"""02-train part 1: the LoRA layer written from scratch."""
import math

import pytest
import torch
from torch import nn

from graders.plugin import say

NB = "02-train"
T = {"zh": "LoRALinear", "en": "LoRALinear"}


def _weights(rng, d_in=12, d_out=10, r=4):
    return dict(weight=torch.randn(d_out, d_in, generator=rng), bias=torch.randn(d_out, generator=rng),
                lora_A=torch.randn(r, d_in, generator=rng), lora_B=torch.randn(d_out, r, generator=rng),
                x=torch.randn(5, d_in, generator=rng))


@pytest.mark.check(points=2, cell="test-lora-layer", title={"zh": "LoRALinear 的初始化", "en": "LoRALinear initialisation"},
                   hint={"zh": "B 全為 0；A 用 kaiming_uniform_(a=√5)；base 凍結，只有 A、B 可訓練。",
                         "en": "B is all zeros; A uses kaiming_uniform_(a=sqrt(5)); the base is frozen, only A and B train."})
def test_initialisation(submission):
    d_in, d_out, r = 48, 20, 6
    state = submission.nb(NB).call("fresh_lora_layer", d_in, d_out, r, seed=3)
    A, B, trainable = state["lora_A"], state["lora_B"], int(state["trainable"])
    assert tuple(A.shape) == (r, d_in) and tuple(B.shape) == (d_out, r), say(
        f"A 應為 {(r, d_in)}、B 應為 {(d_out, r)}，實際 {tuple(A.shape)}、{tuple(B.shape)}。",
        f"A should be {(r, d_in)} and B {(d_out, r)}; got {tuple(A.shape)}, {tuple(B.shape)}.")
    assert torch.count_nonzero(B) == 0, say("lora_B 應初始化為 0，訓練一開始模型才與 base 相同。",
                                            "lora_B must start at zero so training starts from the base model.")
    bound = 1 / math.sqrt(d_in)  # kaiming_uniform_ with a=sqrt(5) draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert A.abs().max() <= bound + 1e-6 and A.std() > bound / 4, say(
        f"lora_A 應來自 U(-{bound:.3f}, {bound:.3f})（kaiming_uniform_, a=√5），實際最大 {A.abs().max():.3f}。",
        f"lora_A should come from U(-{bound:.3f}, {bound:.3f}) (kaiming_uniform_, a=sqrt(5)); max is {A.abs().max():.3f}.")
    assert trainable == r * (d_in + d_out), say(
        f"可訓練參數應為 r·(in+out) = {r * (d_in + d_out):,}，實際 {trainable:,}：base 是否凍結了？",
        f"Trainable parameters should be r*(in+out) = {r * (d_in + d_out):,}, got {trainable:,}: is the base frozen?")


@pytest.mark.check(points=2, cell="test-lora-layer", title={"zh": "LoRALinear 的輸出與參考解答一致", "en": "LoRALinear output matches the reference"},
                   hint={"zh": "scaling 是 alpha / r，不是 alpha。", "en": "The scaling is alpha / r, not alpha."}, visibility="hidden")
def test_output_matches_reference(submission, reference, rng):
    w = _weights(rng)
    got = submission.nb(NB).call("lora_layer_output", **w, alpha=16.0, r=4)
    want = reference.nb(NB).call("lora_layer_output", **w, alpha=16.0, r=4)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.check(points=2, cell="test-lora-layer", title={"zh": "LoRALinear 與 peft 的 LoRA 層相同", "en": "LoRALinear equals peft's LoRA layer"},
                   hint={"zh": "h = W x + b + (alpha/r)·B A x。", "en": "h = W x + b + (alpha/r) B A x."}, visibility="hidden")
def test_equals_peft_layer(submission, rng):
    from peft import LoraConfig, get_peft_model

    w = _weights(rng)

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(12, 10)

    holder = Holder()
    with torch.no_grad():
        holder.proj.weight.copy_(w["weight"])
        holder.proj.bias.copy_(w["bias"])
    peft_model = get_peft_model(holder, LoraConfig(r=4, lora_alpha=8, target_modules=["proj"], lora_dropout=0.0))
    layer = peft_model.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(w["lora_A"])
        layer.lora_B["default"].weight.copy_(w["lora_B"])
        want = layer(w["x"])
    got = submission.nb(NB).call("lora_layer_output", **w, alpha=8.0, r=4)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.check(points=1, cell="test-lora-layer", title={"zh": "dropout 只在 LoRA 路徑上", "en": "dropout only on the LoRA path"},
                   hint={"zh": "dropout 作用在送進 A 的 x 上，base(x) 不受影響。",
                         "en": "Apply dropout to the x that enters A; base(x) is untouched."}, visibility="hidden")
def test_dropout_on_lora_path_only(submission, rng):
    w = _weights(rng)
    got = submission.nb(NB).call("lora_layer_output", **w, alpha=8.0, r=4, dropout=1.0, train=True)
    base = w["x"] @ w["weight"].T + w["bias"]
    assert torch.allclose(got, base, atol=1e-5)
