"""02-train part 1: IA3Linear from scratch against peft's IA3 layer; ones reproduce the base."""
import pytest
import torch
from torch import nn

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "02-train"


def _peft_output(w: dict, feedforward: bool) -> torch.Tensor:
    from peft import IA3Config, get_peft_model

    holder = nn.Sequential()
    holder.add_module("proj", nn.Linear(w["weight"].shape[1], w["weight"].shape[0]))
    with torch.no_grad():
        holder.proj.weight.copy_(w["weight"])
        holder.proj.bias.copy_(w["bias"])
    model = get_peft_model(holder, IA3Config(target_modules=["proj"], feedforward_modules=["proj"] if feedforward else []))
    layer = model.base_model.model.proj
    with torch.no_grad():
        layer.ia3_l["default"].copy_(w["ia3_l"].reshape(layer.ia3_l["default"].shape))
        return layer(w["x"])


@pytest.mark.check(points=4, cell="test-ia3-layer", title={"zh": "IA3Linear 與 peft 的 IA3 層相同（keys/values 與 feed-forward）",
                                                           "en": "IA3Linear equals peft's IA3 layer (keys/values and feed-forward)"},
                   hint={"zh": "keys/values：base(x) * l（縮放輸出）；feed-forward：base(x * l)（縮放輸入）。",
                         "en": "keys/values: base(x) * l (scale the output); feed-forward: base(x * l) (scale the input)."},
                   visibility="hidden")
def test_output_matches_peft(submission, rng):
    d_in = int(torch.randint(5, 16, (1,), generator=rng))
    d_out = d_in + int(torch.randint(1, 8, (1,), generator=rng))  # not square: l on the wrong side cannot fit
    for feedforward in (False, True):
        w = dict(weight=torch.randn(d_out, d_in, generator=rng), bias=torch.randn(d_out, generator=rng),
                 ia3_l=torch.rand(d_in if feedforward else d_out, generator=rng) + 0.5, x=torch.randn(4, d_in, generator=rng))
        want = _peft_output(w, feedforward)
        got = submission.nb(NB).call("ia3_output", **w, feedforward=feedforward)
        if tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want, atol=1e-5, rtol=1e-5):
            continue
        where = say("feed-forward（down_proj）", "feed-forward (down_proj)") if feedforward else say("keys/values", "keys/values")
        if feedforward:
            why = say("feed-forward 要縮放 **輸入**：base(x * l)。", "The feed-forward layer scales its input: base(x * l).")
        else:
            no_bias = (w["x"] @ w["weight"].T) * w["ia3_l"] + w["bias"]
            if torch.allclose(got, no_bias, atol=1e-5, rtol=1e-5):
                why = say("bias 沒有一起縮放：是 base(x) * l，整個輸出都乘上 l。", "The bias is not scaled: it is base(x) * l, the whole output.")
            else:
                why = say("keys/values 要縮放 **輸出**：base(x) * l。", "Keys and values scale the output: base(x) * l.")
        raise Diagnosed(say(f"{where} 的輸出與 peft 不同：", f"The {where} output differs from peft's: ") + why)


@pytest.mark.check(points=2, cell="test-ia3-layer", title={"zh": "l 初始化為 1：新的 IA3 層完全等於 base", "en": "l starts at ones: a fresh IA3 layer is exactly the base"},
                   hint={"zh": "ia3_l = torch.ones(...)；長度：feed-forward 用 in_features，其他用 out_features；base 凍結。",
                         "en": "ia3_l = torch.ones(...); length in_features for feed-forward, out_features otherwise; freeze the base."})
def test_fresh_is_base(submission, rng):
    d_in, d_out = int(torch.randint(5, 16, (1,), generator=rng)), int(torch.randint(17, 24, (1,), generator=rng))
    x = torch.randn(3, d_in, generator=rng)
    for feedforward in (False, True):
        got = submission.nb(NB).call("fresh_ia3", d_in, d_out, feedforward, x)
        n = d_in if feedforward else d_out
        assert tuple(got["ia3_l"].shape) == (n,), say(
            f"{'feed-forward' if feedforward else 'keys/values'} 的 l 形狀應為 ({n},)，實際 {tuple(got['ia3_l'].shape)}。",
            f"{'feed-forward' if feedforward else 'keys/values'}: l should have shape ({n},); got {tuple(got['ia3_l'].shape)}.")
        assert torch.equal(got["ia3_l"], torch.ones(n)), say("l 應初始化為全 1，訓練才從 base 出發。",
                                                             "l must start at ones so training starts from the base.")
        assert torch.equal(got["output"], got["base_output"]), say("l = 1 時輸出應完全等於 base。",
                                                                   "With l = 1 the output should equal the base's exactly.")
        assert int(got["trainable"]) == n, say(f"可訓練參數應為 {n}（只有 l），實際 {int(got['trainable'])}：base 是否凍結？",
                                               f"Trainable parameters should be {n} (l only); got {int(got['trainable'])}: is the base frozen?")
