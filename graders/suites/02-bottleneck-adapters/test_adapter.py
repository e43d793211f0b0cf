"""02-train part 1: the Adapter written from scratch against the course's BottleneckAdapter."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "02-train"


def _weights(rng):
    d = int(torch.randint(6, 24, (1,), generator=rng))
    m = int(torch.randint(2, 6, (1,), generator=rng))
    return dict(down_weight=torch.randn(m, d, generator=rng), down_bias=torch.randn(m, generator=rng),
                up_weight=torch.randn(d, m, generator=rng), up_bias=torch.randn(d, generator=rng),
                h=torch.randn(2, 3, d, generator=rng))


def _course(w) -> torch.Tensor:
    from common_utils.adapters.bottleneck import BottleneckAdapter, BottleneckConfig

    d, m = w["down_weight"].shape[1], w["down_weight"].shape[0]
    layer = BottleneckAdapter(d, BottleneckConfig(bottleneck_size=m, activation="relu"))
    with torch.no_grad():
        for name in ("down", "up"):
            getattr(layer, name).weight.copy_(w[f"{name}_weight"])
            getattr(layer, name).bias.copy_(w[f"{name}_bias"])
        return layer.eval()(w["h"])


@pytest.mark.check(points=3, cell="test-adapter", title={"zh": "Adapter 的輸出與課程的 BottleneckAdapter 相同（含 residual）",
                                                         "en": "Adapter output equals the course's BottleneckAdapter (residual included)"},
                   hint={"zh": "forward(h) = h + up(relu(down(h)))：別忘了加上 h（residual）。",
                         "en": "forward(h) = h + up(relu(down(h))): do not forget to add h (the residual)."})
def test_output_matches_course_adapter(submission, rng):
    w = _weights(rng)
    want = _course(w)
    got = submission.nb(NB).call("adapter_output", **w)
    if tuple(got.shape) != tuple(want.shape):
        raise Diagnosed(say(f"輸出形狀應為 {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                            f"The output should have shape {tuple(want.shape)}; got {tuple(got.shape)}."))
    if torch.allclose(got, want, atol=1e-5, rtol=1e-5):
        return
    h = w["h"]
    if torch.allclose(got, want - h, atol=1e-5, rtol=1e-5):
        raise Diagnosed(say("輸出少了 residual：adapter 回傳 h + 瓶頸路徑，而不是只有瓶頸路徑。",
                            "The residual is missing: an adapter returns h plus the bottleneck path, not the path alone."))
    down = h @ w["down_weight"].T + w["down_bias"]
    no_act = h + down @ w["up_weight"].T + w["up_bias"]
    if torch.allclose(got, no_act, atol=1e-5, rtol=1e-5):
        raise Diagnosed(say("down 與 up 之間少了非線性（ReLU）。", "The non-linearity (ReLU) between down and up is missing."))
    gap = (got - want).abs().max().item()
    raise Diagnosed(say(f"輸出與 h + up(relu(down(h))) 最多差 {gap:.3g}。", f"The output differs from h + up(relu(down(h))) by up to {gap:.3g}."))


@pytest.mark.check(points=3, cell="test-adapter", title={"zh": "up 初始化為 0：新的 adapter 完全等於 identity",
                                                         "en": "zero-initialised up-projection: a fresh adapter is exactly the identity"},
                   hint={"zh": "up 的 weight 與 bias 都初始化為 0；down 用預設初始化；所有參數都可訓練。",
                         "en": "Initialise up's weight and bias to zero; down keeps its default init; every parameter trains."},
                   visibility="hidden")
def test_fresh_adapter_is_identity(submission, rng):
    d, m = int(torch.randint(6, 24, (1,), generator=rng)), int(torch.randint(2, 6, (1,), generator=rng))
    h = torch.randn(2, 4, d, generator=rng)
    got = submission.nb(NB).call("fresh_adapter", d, m, h)
    nonzero = int(torch.count_nonzero(got["up_weight"])) + int(torch.count_nonzero(got["up_bias"]))
    assert nonzero == 0, say(f"up 有 {nonzero} 個非零值：weight 與 bias 都要初始化為 0，訓練才從 base 出發。",
                             f"up holds {nonzero} non-zero values: zero its weight and bias so training starts from the base.")
    assert torch.equal(got["output"], h), say("新的 adapter 的輸出應 **完全** 等於輸入 h。",
                                              "A fresh adapter's output should equal its input h exactly.")
    want = 2 * d * m + m + d
    assert int(got["trainable"]) == want, say(f"可訓練參數應為 2·d·m + m + d = {want:,}，實際 {int(got['trainable']):,}。",
                                              f"Trainable parameters should be 2*d*m + m + d = {want:,}; got {int(got['trainable']):,}.")
