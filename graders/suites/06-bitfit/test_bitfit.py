"""02-train part 1: BitFit from scratch, against the course's apply_bitfit, and its refusal."""
import pytest
import torch
from torch import nn

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "02-train"


def _expected(profile: str, num_labels: int, bias_free_layers: list[int]) -> list[str]:
    from common_utils.adapters.bitfit import apply_bitfit
    from common_utils.models import load_model

    model = load_model("bert", profile)
    model.classifier = nn.Linear(model.config.hidden_size, num_labels)
    for i in bias_free_layers:
        dense = model.bert.encoder.layer[i].intermediate.dense
        model.bert.encoder.layer[i].intermediate.dense = nn.Linear(dense.in_features, dense.out_features, bias=False)
    return sorted(n for n, p in apply_bitfit(model).named_parameters() if p.requires_grad)


@pytest.mark.check(points=3, cell="test-bitfit", title={"zh": "bitfit() 與課程的 apply_bitfit 訓練相同的參數",
                                                        "en": "bitfit() trains the same parameters as the course's apply_bitfit"},
                   hint={"zh": "名稱以 .bias 結尾的參數與 classifier 可訓練，其餘（包括 LayerNorm 的 weight）凍結。",
                         "en": "Parameters ending in .bias and the classifier train; everything else (LayerNorm weights too) is frozen."})
def test_matches_course_adapter(submission, profile, rng):
    from common_utils.models import tiny_config

    layers = tiny_config("bert").num_hidden_layers if profile == "tiny" else 12
    bias_free = sorted(torch.randperm(layers, generator=rng)[: int(torch.randint(1, layers + 1, (1,), generator=rng))].tolist())
    num_labels = int(torch.randint(2, 7, (1,), generator=rng))
    want = set(_expected(profile, num_labels, bias_free))
    got = set(submission.nb(NB).call("bitfit_trainable_on", num_labels, bias_free))
    if got == want:
        return
    extra, missing = sorted(got - want), sorted(want - got)
    if any(n.startswith("classifier.") for n in missing):
        why = say("分類頭被凍結了：新初始化的分類頭不訓練，模型學不會。", "The classifier head is frozen: a fresh head that does not train cannot learn.")
    elif any(n.endswith("LayerNorm.weight") for n in extra):
        why = say("LayerNorm 的 weight 也被解凍了：它是一維的，但不是 bias。", "LayerNorm weights were unfrozen: they are one-dimensional, not biases.")
    elif missing:
        why = say("有些 bias 沒有解凍（例如 LayerNorm 或 attention 的 bias）：BitFit 訓練所有 bias。",
                  "Some biases stay frozen (e.g. LayerNorm or attention biases): BitFit trains every bias.")
    else:
        why = say("有 bias 以外的參數被解凍了。", "Parameters other than biases are unfrozen.")
    raise Diagnosed(why + say(f"（多了 {extra[:3]}，少了 {missing[:3]}）", f" (extra {extra[:3]}, missing {missing[:3]})"))


@pytest.mark.check(points=2, cell="test-bitfit", title={"zh": "沒有 bias 的模型：bitfit() 拒絕並說明原因",
                                                        "en": "a model without biases: bitfit() refuses with a reason"},
                   hint={"zh": "Llama 的線性層沒有 bias：raise ValueError，訊息要提到 bias。",
                         "en": "Llama's linear layers have no bias: raise ValueError with a message that mentions bias."},
                   visibility="hidden")
def test_refuses_model_without_biases(submission):
    got = submission.nb(NB).call("bitfit_refusal")
    if not got["raised"]:
        raise Diagnosed(say(f"對沒有 bias 的 Llama，bitfit() 沒有 raise，留下 {got.get('trainable', 0):,} 個可訓練參數：應 raise ValueError 說明沒有 bias 可訓練。",
                            f"On the bias-free Llama, bitfit() did not raise and left {got.get('trainable', 0):,} trainable "
                            "parameters: raise ValueError saying there is no bias to train."))
    assert got["error"] == "ValueError", say(f"raise 了 {got['error']}，應為 ValueError。",
                                             f"It raised {got['error']}; a ValueError is expected.")
    assert "bias" in got["message"].lower(), say(f"錯誤訊息沒有說明原因（沒有提到 bias）：{got['message'][:120]!r}",
                                                 f"The message gives no reason (it does not mention bias): {got['message'][:120]!r}")
