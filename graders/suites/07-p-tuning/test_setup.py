"""01-setup: the prompt encoder's parameter count by formula, against peft's PromptEncoder."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def peft_count(encoder_type: str, n: int, d: int, h: int, layers: int) -> int:
    """Parameters of peft's own PromptEncoder of these sizes (the grader's expectation)."""
    import warnings

    from peft import PromptEncoderConfig
    from peft.tuners.p_tuning import PromptEncoder
    from peft.tuners.p_tuning.config import PromptEncoderReparameterizationType as Kind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns that MLP ignores encoder_num_layers
        encoder = PromptEncoder(PromptEncoderConfig(num_virtual_tokens=n, token_dim=d, encoder_hidden_size=h,
                                                    encoder_num_layers=layers, num_transformer_submodules=1,
                                                    encoder_reparameterization_type=Kind(encoder_type)))
    return sum(p.numel() for p in encoder.parameters())


def _lstm_hint(got: int, n: int, d: int, h: int, layers: int, want: int) -> str:
    one_direction = n * d + sum(4 * h * ((d if i == 0 else h) + h) + 8 * h for i in range(layers)) + (
        2 * h * 2 * h + 2 * h) + (2 * h * d + d)
    one_bias = want - 2 * layers * 4 * h
    if got == one_direction:
        return say("LSTM 是 **雙向** 的：每一層兩個方向，之後每層的輸入是 2h。",
                   "The LSTM is bidirectional: two directions per layer, and later layers take 2h inputs.")
    if got == one_bias:
        return say("PyTorch 的 LSTM 每個 gate 有兩個 bias（bias_ih 與 bias_hh）。",
                   "PyTorch's LSTM has two biases per gate (bias_ih and bias_hh).")
    return say("LSTM：每層每方向 4h·(輸入 + h) + 8h，第一層輸入 d、之後 2h；再加 Linear(2h, 2h) 與 Linear(2h, d)。",
               "LSTM: 4h(input + h) + 8h per layer and direction, input d first then 2h; plus Linear(2h, 2h) and Linear(2h, d).")


@pytest.mark.check(points=4, cell="test-count", title={"zh": "prompt encoder 的參數量公式（MLP 與 LSTM）", "en": "the prompt encoder's parameter count (MLP and LSTM)"},
                   hint={"zh": "embedding n·d；MLP 三個 Linear；LSTM 雙向、每個 gate 兩個 bias，再接兩個 Linear。",
                         "en": "embedding n*d; MLP: three Linear layers; LSTM: bidirectional, two biases per gate, then two Linear layers."})
def test_count_by_formula(submission, rng):
    for _round in range(2):
        n, d, h, layers = (int(torch.randint(lo, hi, (1,), generator=rng)) for lo, hi in ((2, 30), (8, 96), (4, 64), (1, 4)))
        got = submission.nb(NB).call("count_on", n, d, h, layers)
        for encoder_type in ("MLP", "LSTM"):
            want = peft_count(encoder_type, n, d, h, layers)
            mine = int(got[encoder_type])
            if mine == want:
                continue
            sizes = f"n={n}, d={d}, h={h}, L={layers}"
            why = _lstm_hint(mine, n, d, h, layers, want) if encoder_type == "LSTM" else say(
                "MLP：embedding n·d 加上 Linear(d, h)、Linear(h, h)、Linear(h, d)，每個都有 bias。",
                "MLP: embedding n*d plus Linear(d, h), Linear(h, h), Linear(h, d), each with a bias.")
            raise Diagnosed(say(f"{encoder_type}（{sizes}）：預期 {want:,}，實際 {mine:,}。", f"{encoder_type} ({sizes}): "
                                f"expected {want:,}, got {mine:,}. ") + why)
