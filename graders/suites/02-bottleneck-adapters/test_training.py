"""02-train parts 2-3: the saved configuration, exactly the adapters and a trained head saved, learning."""
import json

import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester

NB = "02-train"
ADAPTERS = "artifacts/adapters"
SPEC = {"method": "bottleneck", "task_type": "SEQ_CLS", "placement": "houlsby", "bottleneck_size": 16, "activation": "relu"}


def saved_config(handle, tmp) -> dict:
    return peft_tester.saved_json(handle.artifact_path(ADAPTERS), "adapter_config.json", tmp)


def adapted(profile: str, handle, tmp):
    return peft_tester.bottleneck_model(handle.artifact_path(ADAPTERS), profile, tmp)


@pytest.mark.check(points=2, cell="test-train-adapters", title={"zh": "adapter_config.json 是 Houlsby adapter 的設定",
                                                               "en": "adapter_config.json describes the Houlsby adapters"},
                   hint={"zh": "method=bottleneck、task_type=SEQ_CLS、placement/bottleneck_size/activation 取自 config，不多不少。",
                         "en": "method=bottleneck, task_type=SEQ_CLS, placement/bottleneck_size/activation from the config, no more, no less."})
def test_config_is_bottleneck(submission, grader_tmp):
    got = saved_config(submission.nb(NB), grader_tmp)
    diffs = [say(f"{k}={got.get(k)!r} 應為 {v!r}", f"{k}={got.get(k)!r}, expected {v!r}") for k, v in SPEC.items() if got.get(k) != v]
    extra = sorted(set(got) - set(SPEC))
    if extra:
        diffs.append(say(f"多了不認得的鍵 {extra}", f"unknown extra keys {extra}"))
    assert not diffs, say("設定與 bottleneck adapter 的不同：", "The configuration is not the bottleneck adapters': ") + "; ".join(diffs)


@pytest.mark.check(points=3, cell="test-train-adapters", title={"zh": "存下的正好是 adapter 與訓練過的分類頭",
                                                               "en": "exactly the adapters and a trained head were saved"},
                   hint={"zh": "只存 requires_grad 的參數；分類頭是新初始化的，必須可訓練（不要凍結它）。",
                         "en": "Save only the parameters that require grad; the head is freshly initialised and must train (do not freeze it)."})
def test_saved_adapters_and_trained_head(submission, profile, grader_tmp):
    from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
    from common_utils.models import load_model

    tensors = peft_tester.saved_tensors(submission.nb(NB).artifact_path(ADAPTERS), "adapters.safetensors", grader_tmp)
    fresh = add_bottleneck_adapters(load_model("bert", profile), BottleneckConfig(**{k: SPEC[k] for k in ("placement", "bottleneck_size", "activation")}))
    expected = {n: p for n, p in fresh.named_parameters() if p.requires_grad}
    extra, missing = sorted(set(tensors) - set(expected)), sorted(set(expected) - set(tensors))
    if extra:
        raise Diagnosed(say(f"存了 {len(extra)} 個不是 adapter 也不是分類頭的張量（例如 {extra[:2]}）：只存可訓練的參數。",
                            f"{len(extra)} saved tensors are neither adapters nor the head (e.g. {extra[:2]}): save only the trainable ones."))
    if missing:
        raise Diagnosed(say(f"少了 {len(missing)} 個可訓練的參數（例如 {missing[:2]}）：分類頭與兩個位置（attention、FFN）的 adapter 都要存。",
                            f"{len(missing)} trainable parameters are missing (e.g. {missing[:2]}): save the head and the adapters "
                            "at both sites (attention, FFN)."))
    if torch.equal(tensors["classifier.weight"], expected["classifier.weight"].cpu()):
        raise Diagnosed(say("分類頭與初始化時完全相同：它被凍結了。新初始化的分類頭不訓練，模型學不會。",
                            "The head equals its initial values: it was frozen. A fresh head that does not train cannot learn."))


@pytest.mark.check(points=3, cell="test-train-adapters", title={"zh": "在沒看過的句子對上學到了（與參考解答相比）",
                                                               "en": "it learned (held-out pairs, against the reference)"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad；分類頭要訓練；存下訓練後的參數。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad; train the head; save the trained parameters."},
                   visibility="hidden")  # against the reference's accuracy: no reference in a student kit
def test_learns_held_out(submission, reference, assignment, profile, grader_tmp):
    margin = assignment.settings["targets"]["accuracy_margin"]
    got = held_out_accuracy(adapted(profile, submission.nb(NB), grader_tmp), profile)
    want = held_out_accuracy(adapted(profile, reference.nb(NB), grader_tmp), profile)
    assert got >= want - margin, say(
        f"載入你的 adapter 後，held-out 準確率 {got:.3f}；參考解答 {want:.3f}，目標至少 {want - margin:.3f}。",
        f"With your adapters the held-out accuracy is {got:.3f}; the reference reaches {want:.3f}, the target is at "
        f"least {want - margin:.3f}.")


def held_out_accuracy(model, profile: str) -> float:
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_tokenizer
    from common_utils.training import model_device, to_device

    held = load_course_dataset("paraphrase", profile, split="held_out")
    enc = load_tokenizer(profile, "bert")([r["sentence1"] for r in held], [r["sentence2"] for r in held], padding=True,
                                          truncation=True, max_length=64, return_tensors="pt")
    enc = to_device(enc, model_device(model))
    with torch.no_grad():
        predicted = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.argmax(-1).cpu()
    return float((predicted == torch.tensor([r["label"] for r in held])).float().mean())
