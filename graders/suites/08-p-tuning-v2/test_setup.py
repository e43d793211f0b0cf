"""01-setup: the deep prompts' parameter count by formula, with and without projection, against peft's PrefixEncoder."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def peft_count(projection: bool, n: int, d: int, layers: int, h: int) -> int:
    """Parameters of peft's own PrefixEncoder of these sizes (the grader's expectation)."""
    from peft import PrefixTuningConfig
    from peft.tuners.prefix_tuning import PrefixEncoder

    encoder = PrefixEncoder(PrefixTuningConfig(num_virtual_tokens=n, token_dim=d, num_layers=layers, encoder_hidden_size=h,
                                               prefix_projection=projection, num_transformer_submodules=1))
    return sum(p.numel() for p in encoder.parameters())


@pytest.mark.check(points=4, cell="test-count", title={"zh": "每一層 prefix 的參數量公式（有無 projection）",
                                                       "en": "the per-layer prefixes' parameter count (with and without projection)"},
                   hint={"zh": "不投影：n × 2 × L × d（每層 key 與 value）；投影：n·d + Linear(d, h) + Linear(h, 2Ld)，都有 bias。",
                         "en": "No projection: n x 2 x L x d (a key and a value per layer); projection: n*d + Linear(d, h) + "
                               "Linear(h, 2Ld), with biases."})
def test_count_by_formula(submission, rng):
    for _round in range(2):
        n, d, layers, h = (int(torch.randint(lo, hi, (1,), generator=rng)) for lo, hi in ((2, 30), (8, 96), (1, 13), (4, 64)))
        got = submission.nb(NB).call("count_on", n, d, layers, h)
        for projection in (False, True):
            want, mine = peft_count(projection, n, d, layers, h), int(got[str(projection)])
            if mine == want:
                continue
            sizes = f"n={n}, d={d}, L={layers}, h={h}"
            if not projection and mine == n * layers * d:
                why = say("每一層有 key **和** value 兩個 prefix：要乘 2。", "Every layer has a key and a value prefix: multiply by 2.")
            elif not projection and mine == n * 2 * d:
                why = say("P-tuning v2 在 **每一層** 都有 prefix：要乘層數 L。", "P-tuning v2 has prefixes in every layer: multiply by L.")
            else:
                why = say("公式見 notebook 第 1 節；每個 Linear 都有 bias。", "See the formula in section 1; every Linear has a bias.")
            raise Diagnosed(say(f"prefix_projection={projection}（{sizes}）：預期 {want:,}，實際 {mine:,}。",
                                f"prefix_projection={projection} ({sizes}): expected {want:,}, got {mine:,}. ") + why)
