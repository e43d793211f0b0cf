"""02-train part 1: the LoRA layer written from scratch."""
import math

import pytest
import torch
from torch import nn

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "02-train"


def _shape(rng):
    """Per-student sizes, and an alpha that r does not divide (so alpha // r and alpha / r differ)."""
    d_in, d_out, r = (int(v) for v in (torch.randint(9, 25, (1,), generator=rng)[0],
                                       torch.randint(5, 17, (1,), generator=rng)[0],
                                       torch.randint(3, 7, (1,), generator=rng)[0]))
    alpha = r * int(torch.randint(1, 4, (1,), generator=rng)[0]) + 1
    return d_in, d_out, r, alpha


def _weights(rng, d_in, d_out, r):
    return dict(weight=torch.randn(d_out, d_in, generator=rng), bias=torch.randn(d_out, generator=rng),
                lora_A=torch.randn(r, d_in, generator=rng), lora_B=torch.randn(d_out, r, generator=rng),
                x=torch.randn(5, d_in, generator=rng))


# Known wrong answers, (zh, en) hint each: the failure says which one the output matches.
WRONG = {
    "alpha": ("scaling 用了 alpha，應為 alpha / r。", "The scaling is alpha; it should be alpha / r."),
    "alpha_floor": ("scaling 用了整數除法 alpha // r，應為 alpha / r（alpha 不一定整除 r）。",
                    "The scaling uses integer division alpha // r; use alpha / r (r need not divide alpha)."),
    "r_over_alpha": ("scaling 寫反了：r / alpha，應為 alpha / r。", "The scaling is inverted (r / alpha); it is alpha / r."),
    "no_bias": ("輸出少了 base 的 bias：請呼叫 base(x)，不要只乘 weight。",
                "The base's bias is missing: call base(x) rather than multiplying by the weight only."),
    "no_lora": ("輸出與 base 相同：LoRA 路徑沒有加上去。", "The output equals the base's: the LoRA path is not added."),
    "no_scaling": ("少了 scaling（alpha / r）。", "The scaling (alpha / r) is missing."),
}


def lora_variants(w, alpha, r) -> dict:
    """The right output under key "right", and the known wrong ones."""
    plain = w["x"] @ w["weight"].T
    base = plain + w["bias"]
    delta = w["x"] @ w["lora_A"].T @ w["lora_B"].T
    return {"right": base + alpha / r * delta, "alpha": base + alpha * delta, "alpha_floor": base + (alpha // r) * delta,
            "r_over_alpha": base + r / alpha * delta, "no_bias": plain + alpha / r * delta, "no_lora": base,
            "no_scaling": base + delta}


def diagnose(got, variants: dict, atol=1e-4) -> None:
    """Pass if ``got`` is the right output; else fail naming the wrong variant it matches, or the gap."""
    want = variants["right"]
    if tuple(got.shape) != tuple(want.shape):
        raise Diagnosed(say(f"輸出形狀應為 {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                            f"The output should have shape {tuple(want.shape)}; got {tuple(got.shape)}."))
    if torch.allclose(got, want, atol=atol, rtol=1e-4):
        return
    for name, value in variants.items():
        if name != "right" and torch.allclose(got, value, atol=atol, rtol=1e-4):
            raise Diagnosed(say(*WRONG[name]))
    gap = (got - want).abs().max().item()
    raise Diagnosed(say(f"輸出與 W x + b + (alpha/r)·B A x 最多差 {gap:.3g}：檢查矩陣乘法的順序與轉置。",
                        f"The output differs from W x + b + (alpha/r) B A x by up to {gap:.3g}: check the "
                        "order and transposes of the products."))


@pytest.mark.check(points=2, cell="test-lora-layer", title={"zh": "LoRALinear 的初始化", "en": "LoRALinear initialisation"},
                   hint={"zh": "B 全為 0；A 用 kaiming_uniform_(a=√5)；base 凍結，只有 A、B 可訓練。",
                         "en": "B is all zeros; A uses kaiming_uniform_(a=sqrt(5)); the base is frozen, only A and B train."})
def test_initialisation(submission, rng):
    d_in, d_out, r, _ = _shape(rng)
    d_in *= 3  # enough entries in A to judge its distribution
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


@pytest.mark.check(points=2, cell="test-lora-layer", title={"zh": "LoRALinear 的輸出（alpha 不整除 r）", "en": "LoRALinear output (r does not divide alpha)"},
                   hint={"zh": "h = W x + b + (alpha/r)·B A x。", "en": "h = W x + b + (alpha/r) B A x."}, visibility="hidden")
def test_output_is_right(submission, rng):
    d_in, d_out, r, alpha = _shape(rng)
    w = _weights(rng, d_in, d_out, r)
    got = submission.nb(NB).call("lora_layer_output", **w, alpha=alpha, r=r)
    diagnose(got, lora_variants(w, alpha, r))


@pytest.mark.check(points=2, cell="test-lora-layer", title={"zh": "LoRALinear 與 peft 的 LoRA 層相同", "en": "LoRALinear equals peft's LoRA layer"},
                   hint={"zh": "h = W x + b + (alpha/r)·B A x。", "en": "h = W x + b + (alpha/r) B A x."}, visibility="hidden")
def test_equals_peft_layer(submission, rng):
    from peft import LoraConfig, get_peft_model

    d_in, d_out, r, alpha = _shape(rng)
    w = _weights(rng, d_in, d_out, r)
    holder = nn.Sequential()
    holder.add_module("proj", nn.Linear(d_in, d_out))
    with torch.no_grad():
        holder.proj.weight.copy_(w["weight"])
        holder.proj.bias.copy_(w["bias"])
    peft_model = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0))
    layer = peft_model.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(w["lora_A"])
        layer.lora_B["default"].weight.copy_(w["lora_B"])
        want = layer(w["x"])
    got = submission.nb(NB).call("lora_layer_output", **w, alpha=alpha, r=r)
    diagnose(got, {**lora_variants(w, alpha, r), "right": want})


@pytest.mark.check(points=1, cell="test-lora-layer", title={"zh": "dropout 只在 LoRA 路徑上、只在訓練時", "en": "dropout on the LoRA path only, in training only"},
                   hint={"zh": "dropout 作用在送進 A 的 x 上，base(x) 不受影響；eval() 時不做 dropout。",
                         "en": "Apply dropout to the x that enters A, not to base(x); no dropout in eval()."}, visibility="hidden")
def test_dropout_on_lora_path_only(submission, rng):
    d_in, d_out, r, alpha = _shape(rng)
    w = _weights(rng, d_in, d_out, r)
    # Against the student's own layer with B = 0: a lost bias or a scaling bug is another check's business.
    base = submission.nb(NB).call("lora_layer_output", **{**w, "lora_B": torch.zeros_like(w["lora_B"])}, alpha=alpha, r=r)
    train = submission.nb(NB).call("lora_layer_output", **w, alpha=alpha, r=r, dropout=1.0, train=True)
    if not torch.allclose(train, base, atol=1e-5):
        raise Diagnosed(say("dropout=1 的訓練模式下輸出應等於 base(x)：dropout 是否也作用在 base 上，或沒有作用？",
                            "With dropout=1 in training the output should equal base(x): is dropout applied to the "
                            "base too, or not at all?"))
    p = float(torch.rand(1, generator=rng)) * 0.4 + 0.3
    # Against the student's own output without dropout: a scaling bug is another check's business.
    evaluated = submission.nb(NB).call("lora_layer_output", **w, alpha=alpha, r=r, dropout=p, train=False)
    plain = submission.nb(NB).call("lora_layer_output", **w, alpha=alpha, r=r, dropout=0.0, train=False)
    if not torch.allclose(evaluated, plain, atol=1e-5, rtol=1e-5):
        raise Diagnosed(say(f"eval() 時（dropout={p:.2f}）不該有 dropout：請用 nn.Dropout，或 F.dropout(..., training=self.training)。",
                            f"In eval() (dropout={p:.2f}) there must be no dropout: use nn.Dropout, or "
                            "F.dropout(..., training=self.training)."))
