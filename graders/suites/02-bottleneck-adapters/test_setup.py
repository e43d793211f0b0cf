"""01-setup: the adapter parameter count by the formula, for both placements, against a count on the model."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def counted(hidden: int, bottleneck: int, num_layers: int, placement: str) -> int:
    """Adapter parameters of the course's adapters on a BERT of these sizes, counted on the model."""
    from transformers import BertConfig, BertForSequenceClassification

    from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters

    config = BertConfig(vocab_size=16, hidden_size=hidden, num_hidden_layers=num_layers, num_attention_heads=1,
                        intermediate_size=2 * hidden, max_position_embeddings=8)
    model = add_bottleneck_adapters(BertForSequenceClassification(config),
                                    BottleneckConfig(bottleneck_size=bottleneck, placement=placement))
    return sum(p.numel() for n, p in model.named_parameters() if ".adapter." in n)


@pytest.mark.check(points=4, cell="test-count", title={"zh": "adapter 參數量公式（Houlsby 與 Pfeiffer）", "en": "the adapter count formula (Houlsby and Pfeiffer)"},
                   hint={"zh": "一個 adapter = 2·d·m + m + d；Houlsby 每個 block 兩個，Pfeiffer 一個。",
                         "en": "One adapter = 2*d*m + m + d; Houlsby puts two in each block, Pfeiffer one."})
def test_formula_counts_both_placements(submission, rng):
    hidden = int(torch.randint(5, 40, (1,), generator=rng))
    bottleneck = int(torch.randint(2, 12, (1,), generator=rng))
    layers = int(torch.randint(1, 5, (1,), generator=rng))
    got = submission.nb(NB).call("count_on", hidden, bottleneck, layers)
    for placement in ("houlsby", "pfeiffer"):
        want = counted(hidden, bottleneck, layers, placement)
        value = int(got[placement])
        if value == want:
            continue
        sites = 2 if placement == "houlsby" else 1
        weights_only = layers * sites * 2 * hidden * bottleneck
        numbers = say(f"{placement}（d={hidden}, m={bottleneck}, {layers} 層）：預期 {want:,}，實際 {value:,}。",
                      f"{placement} (d={hidden}, m={bottleneck}, {layers} layers): expected {want:,}, got {value:,}. ")
        if value == weights_only:
            why = say("少了 down 與 up 的 bias（m + d）。", "The biases of down and up (m + d) are missing.")
        elif value * (3 - sites) == want * sites or value == want * 2 or value * 2 == want:
            why = say("每個 block 的 adapter 數不對：Houlsby 兩個（attention 後、FFN 後），Pfeiffer 一個（FFN 後）。",
                      "The adapters per block are wrong: Houlsby has two (after attention and after the FFN), Pfeiffer one.")
        else:
            why = say("一個 adapter = 2·d·m + m + d。", "One adapter = 2*d*m + m + d.")
        raise Diagnosed(numbers + why)
