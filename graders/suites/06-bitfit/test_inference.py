"""03-inference: the student's loading and classification against the grader's own, on texts it draws."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

from graders.suites import peft_tester

NB = "03-inference"
BITFIT = "artifacts/bitfit"


def saved(handle, tmp):
    """The BitFit parameters a notebook saved (safetensors only)."""
    return peft_tester.saved_tensors(handle.artifact_path(BITFIT), "bitfit.safetensors", tmp)


def applied(profile: str, tensors: dict):
    """A fresh base the grader builds, with ``tensors`` copied in."""
    from common_utils.models import load_model

    return peft_tester.load_tensors_into(load_model("bert", profile).eval(), tensors)


@pytest.mark.check(points=4, cell="test-inference", title={"zh": "載回的 BitFit 模型給出相同的 logits", "en": "the reloaded BitFit model gives the same logits"},
                   hint={"zh": "新的 base + load_state_dict(strict=False)（分類頭也要載入）；eval()；傳入 attention_mask。",
                         "en": "A fresh base + load_state_dict(strict=False) (the head too); eval(); pass the attention_mask."})
def test_logits_match_artifact(submission, profile, rng, grader_tmp):
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_tokenizer
    from common_utils.training import model_device, to_device

    rows = load_course_dataset("sentiment", "tiny", split="held_out")  # texts only: shipped under every profile
    pick = torch.randperm(len(rows), generator=rng)[: int(torch.randint(4, 9, (1,), generator=rng))].tolist()
    texts = [rows[i]["text"] for i in pick]
    texts[0] = texts[0] + " " + texts[-1]  # rows of different lengths: padding must be masked
    model = applied(profile, saved(submission.nb(NB), grader_tmp))
    enc = load_tokenizer(profile, "bert")(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    enc = to_device(enc, model_device(model))  # the grader's runs on the model's device, compared on the CPU
    with torch.no_grad():
        want = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.cpu()
    got = submission.nb(NB).call("logits_on", texts)
    if tuple(got.shape) != tuple(want.shape):
        raise Diagnosed(say(f"logits 形狀應為 {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                            f"The logits should have shape {tuple(want.shape)}; got {tuple(got.shape)}."))
    if torch.allclose(got, want, atol=1e-4, rtol=1e-4):
        return
    with torch.no_grad():
        unmasked = model(input_ids=enc["input_ids"]).logits.cpu()
    if torch.allclose(got, unmasked, atol=1e-4, rtol=1e-4):
        raise Diagnosed(say("logits 等於沒有 attention_mask 的結果：padding token 被 attention 看到了，請傳入 attention_mask。",
                            "The logits equal those without attention_mask: padding tokens are attended to; pass attention_mask."))
    tensors = saved(submission.nb(NB), grader_tmp)
    with torch.no_grad():
        headless = applied(profile, {n: t for n, t in tensors.items() if not n.startswith("classifier.")})
        no_head = headless(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.cpu()
    if torch.allclose(got, no_head, atol=1e-4, rtol=1e-4):
        raise Diagnosed(say("logits 等於「沒有載入分類頭」的結果：classifier.weight 與 classifier.bias 也要載入。",
                            "The logits equal those without the trained head: load classifier.weight and classifier.bias too."))
    gap = (got - want).abs().max().item()
    raise Diagnosed(say(f"logits 與 grader 用你存下的參數算出的結果最多差 {gap:.3g}：所有張量都載入了嗎？模型是否在 eval() 模式？",
                        f"The logits differ by up to {gap:.3g} from the grader's, computed from your saved parameters: "
                        "were all tensors loaded? Is the model in eval() mode?"))
