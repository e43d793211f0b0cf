"""02-train part 1: the PrefixEncoder and the per-layer key/value split, against peft with the same weights."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester

NB = "02-train"
PROJECTIONS = (False, True)


def _sizes(rng) -> list[int]:
    """([n, d, layers, h], heads): d is a multiple of the heads."""
    heads = int(torch.randint(1, 5, (1,), generator=rng))
    return [int(torch.randint(2, 12, (1,), generator=rng)), heads * int(torch.randint(2, 9, (1,), generator=rng)),
            int(torch.randint(1, 5, (1,), generator=rng)), int(torch.randint(4, 32, (1,), generator=rng))], heads


def _peft_encoder(projection: bool, sizes: list[int], rng=None):
    """peft's PrefixEncoder of ``sizes`` = [n, d, layers, h], its weights drawn from ``rng`` when given."""
    from peft import PrefixTuningConfig
    from peft.tuners.prefix_tuning import PrefixEncoder

    n, d, layers, h = sizes
    encoder = PrefixEncoder(PrefixTuningConfig(num_virtual_tokens=n, token_dim=d, num_layers=layers, encoder_hidden_size=h,
                                               prefix_projection=projection, num_transformer_submodules=1))
    return peft_tester.draw_weights(encoder, rng) if rng is not None else encoder.eval()


def peft_layers(prefix: torch.Tensor, layers: int, heads: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """peft's own split (PeftModel.get_prompt): view, permute [2, 0, 3, 1, 4], split in pairs."""
    size, tokens, width = prefix.shape
    kv = prefix.view(size, tokens, 2 * layers, heads, width // (2 * layers * heads)).permute([2, 0, 3, 1, 4]).split(2)
    return [(pair[0], pair[1]) for pair in kv]


@pytest.mark.check(points=3, cell="test-encoder", title={"zh": "PrefixEncoder 的輸出形狀與參數量（有無 projection）",
                                                         "en": "PrefixEncoder output shapes and parameter counts (with and without projection)"},
                   hint={"zh": "forward(indices) 回傳 (batch, n, 2·L·d)；參數量要和 peft 的 PrefixEncoder 相同。",
                         "en": "forward(indices) returns (batch, n, 2*L*d); the count equals peft's PrefixEncoder."})
def test_shapes_and_count(submission, rng):
    for projection in PROJECTIONS:
        sizes, _ = _sizes(rng)
        n, d, layers, _h = sizes
        got = submission.nb(NB).call("encoder_output", projection, sizes, None, peft_tester.encoder_rows(n, rng))
        want = sum(p.numel() for p in _peft_encoder(projection, sizes).parameters())
        peft_tester.require_encoder_shape_and_count(got, (2, n, 2 * layers * d), want,
                                                    f"prefix_projection={projection} (n, d, L, h = {sizes})", "(batch, n, 2*L*d)")


@pytest.mark.check(points=3, cell="test-encoder", title={"zh": "PrefixEncoder 與 peft 的相同（grader 抽的權重）",
                                                         "en": "PrefixEncoder equals peft's (grader-drawn weights)"},
                   hint={"zh": "不投影：直接查 embedding；投影：embedding → Linear → Tanh → Linear。",
                         "en": "No projection: the embedding lookup itself; projection: embedding -> Linear -> Tanh -> Linear."},
                   visibility="hidden")
def test_equals_peft(submission, rng):
    for projection in PROJECTIONS:
        sizes, _ = _sizes(rng)
        peft_encoder = _peft_encoder(projection, sizes, rng)
        indices = peft_tester.encoder_rows(sizes[0], rng)
        with torch.no_grad():
            want = peft_encoder(indices)
        got = submission.nb(NB).call("encoder_output", projection, sizes, peft_encoder.state_dict(), indices)["output"]
        same_shape = tuple(got.shape) == tuple(want.shape)
        if same_shape and torch.allclose(got, want, atol=1e-5, rtol=1e-4):
            continue
        if projection and same_shape:
            with torch.no_grad():
                relu = peft_encoder.transform[2](torch.relu(peft_encoder.transform[0](peft_encoder.embedding(indices))))
            if torch.allclose(got, relu, atol=1e-5, rtol=1e-4):
                raise Diagnosed(say("projection 的非線性是 Tanh（Li & Liang、peft 與 P-tuning v2 的程式碼都是），不是 ReLU。",
                                    "The projection's non-linearity is Tanh (Li & Liang, peft and the P-tuning v2 code), not ReLU."))
        gap = (got - want).abs().max().item() if same_shape else float("nan")
        raise Diagnosed(say(f"prefix_projection={projection}（n, d, L, h = {sizes}）：放入同樣的權重後，輸出（形狀 {tuple(got.shape)}）"
                            f"與 peft 的 PrefixEncoder（{tuple(want.shape)}）最多差 {gap:.3g}。",
                            f"prefix_projection={projection} (n, d, L, h = {sizes}): with the same weights the output (shape "
                            f"{tuple(got.shape)}) differs from peft's PrefixEncoder ({tuple(want.shape)}) by up to {gap:.3g}."))


@pytest.mark.check(points=3, cell="test-encoder", title={"zh": "每一層的 key/value prefix：形狀 (batch, heads, n, head_dim) × 層數，值與 peft 相同",
                                                         "en": "per-layer key/value prefixes: shape (batch, heads, n, head_dim) x layers, values as peft's"},
                   hint={"zh": "view(batch, n, 2L, heads, head_dim).permute(2, 0, 3, 1, 4)；第 2l 個是第 l 層的 key、2l+1 是 value。",
                         "en": "view(batch, n, 2L, heads, head_dim).permute(2, 0, 3, 1, 4); entry 2l is layer l's key, 2l+1 its value."})
def test_layer_prefixes(submission, rng):
    (n, d, layers, _h), heads = _sizes(rng)
    layers = max(layers, 2)  # two layers at least, so that keys and values of different layers can be told apart
    batch = int(torch.randint(1, 4, (1,), generator=rng))
    prefix = torch.randn(batch, n, 2 * layers * d, generator=rng)
    want = peft_layers(prefix, layers, heads)
    got = submission.nb(NB).call("layer_prefixes_on", prefix, layers, heads)
    if len(got) != layers:
        raise Diagnosed(say(f"應有 {layers} 層，每層一個 (key, value)；實際 {len(got)} 個。",
                            f"There should be {layers} layers, one (key, value) each; got {len(got)}."))
    shape = (batch, heads, n, d // heads)
    shapes = {tuple(t.shape) for pair in got for t in pair}
    if shapes != {shape}:
        raise Diagnosed(say(f"每個 key/value 的形狀應為 (batch, heads, n, head_dim) = {shape}，實際 {sorted(shapes)}。",
                            f"Every key/value should have shape (batch, heads, n, head_dim) = {shape}; got {sorted(shapes)}."))
    for layer, ((k, v), (wk, wv)) in enumerate(zip(got, want)):
        if torch.equal(k, wk) and torch.equal(v, wv):
            continue
        if torch.equal(k, want[layer // 2][layer % 2]) or torch.equal(k, wv):
            raise Diagnosed(say(f"第 {layer} 層的 key/value 取錯了：2L 個向量裡，第 2l 個是第 l 層的 key、第 2l+1 個是 value（不是前 L 個 key、後 L 個 value）。",
                                f"Layer {layer}'s key/value are the wrong slices: of the 2L vectors, entry 2l is layer l's key and 2l+1 its "
                                "value (not the first L keys and the last L values)."))
        raise Diagnosed(say(f"第 {layer} 層的 key/value 與 peft 切出來的不同：先 view 成 (batch, n, 2L, heads, head_dim) 再 permute。",
                            f"Layer {layer}'s key/value differ from peft's split: view as (batch, n, 2L, heads, head_dim), then permute."))
