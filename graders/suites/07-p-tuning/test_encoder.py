"""02-train part 1: the PromptEncoder written from scratch, against peft's PromptEncoder with the same weights."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester

NB = "02-train"
TYPES = ("MLP", "LSTM")


def _sizes(rng) -> list[int]:
    return [int(torch.randint(lo, hi, (1,), generator=rng)) for lo, hi in ((2, 12), (8, 48), (4, 32), (1, 3))]


def _peft_encoder(encoder_type: str, sizes: list[int], rng=None):
    """peft's PromptEncoder of ``sizes`` = [n, d, h, layers], its weights drawn from ``rng`` when given."""
    import warnings

    from peft import PromptEncoderConfig
    from peft.tuners.p_tuning import PromptEncoder
    from peft.tuners.p_tuning.config import PromptEncoderReparameterizationType as Kind

    n, d, h, layers = sizes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns that MLP ignores encoder_num_layers
        encoder = PromptEncoder(PromptEncoderConfig(num_virtual_tokens=n, token_dim=d, encoder_hidden_size=h,
                                                    encoder_num_layers=layers, num_transformer_submodules=1,
                                                    encoder_reparameterization_type=Kind(encoder_type)))
    return peft_tester.draw_weights(encoder, rng) if rng is not None else encoder.eval()


@pytest.mark.check(points=3, cell="test-encoder", title={"zh": "PromptEncoder 的輸出形狀與參數量（MLP 與 LSTM）",
                                                         "en": "PromptEncoder output shapes and parameter counts (MLP and LSTM)"},
                   hint={"zh": "forward(indices) 回傳 (batch, n, token_dim)；參數量要和 peft 的 PromptEncoder 相同（LSTM 雙向）。",
                         "en": "forward(indices) returns (batch, n, token_dim); the count equals peft's PromptEncoder (the LSTM is bidirectional)."})
def test_shapes_and_count(submission, rng):
    for encoder_type in TYPES:
        sizes = _sizes(rng)
        n, d = sizes[0], sizes[1]
        got = submission.nb(NB).call("encoder_output", encoder_type, sizes, None, peft_tester.encoder_rows(n, rng))
        want = sum(p.numel() for p in _peft_encoder(encoder_type, sizes).parameters())
        peft_tester.require_encoder_shape_and_count(got, (2, n, d), want, f"{encoder_type} (n, d, h, L = {sizes})",
                                                    "(batch, n, token_dim)")


@pytest.mark.check(points=4, cell="test-encoder", title={"zh": "PromptEncoder 與 peft 的相同（grader 抽的權重）",
                                                         "en": "PromptEncoder equals peft's (grader-drawn weights)"},
                   hint={"zh": "embedding → （LSTM：lstm_head(x)[0]）→ mlp_head；MLP 的 Linear 之間有 ReLU。",
                         "en": "embedding -> (LSTM: lstm_head(x)[0]) -> mlp_head; ReLU between the MLP's Linear layers."},
                   visibility="hidden")
def test_equals_peft(submission, rng):
    for encoder_type in TYPES:
        sizes = _sizes(rng)
        peft_encoder = _peft_encoder(encoder_type, sizes, rng)
        indices = peft_tester.encoder_rows(sizes[0], rng)
        with torch.no_grad():
            want = peft_encoder(indices)
        got = submission.nb(NB).call("encoder_output", encoder_type, sizes, peft_encoder.state_dict(), indices)["output"]
        if tuple(got.shape) != tuple(want.shape):
            raise Diagnosed(say(f"{encoder_type}：輸出形狀 {tuple(got.shape)}，peft 的是 {tuple(want.shape)}。",
                                f"{encoder_type}: output shape {tuple(got.shape)}; peft's is {tuple(want.shape)}."))
        if torch.allclose(got, want, atol=1e-5, rtol=1e-4):
            continue
        with torch.no_grad():
            x = peft_encoder.embedding(indices)
            if encoder_type == "LSTM":
                x = peft_encoder.lstm_head(x)[0]
            linear = [m for m in peft_encoder.mlp_head if isinstance(m, torch.nn.Linear)]
            no_relu = x
            for layer in linear:
                no_relu = layer(no_relu)
        if torch.allclose(got, no_relu, atol=1e-5, rtol=1e-4):
            raise Diagnosed(say(f"{encoder_type}：輸出等於沒有 ReLU 的 MLP：Linear 之間要有非線性。",
                                f"{encoder_type}: the output equals the MLP without its ReLUs: put the non-linearity between the Linear layers."))
        largest = (got - want).abs().max().item()
        raise Diagnosed(say(f"{encoder_type}（n, d, h, L = {sizes}）：放入同樣的權重後，輸出與 peft 的 PromptEncoder 最多差 {largest:.3g}。",
                            f"{encoder_type} (n, d, h, L = {sizes}): with the same weights the output differs from peft's "
                            f"PromptEncoder by up to {largest:.3g}."))
