"""03-inference: the student's loading and classification against the grader's own, on pairs it draws."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester

NB = "03-inference"


def _pairs(rng) -> list[list[str]]:
    from common_utils.datasets import load_course_dataset

    rows = load_course_dataset("paraphrase", "tiny", split="held_out")  # texts only: shipped under every profile
    pick = torch.randperm(len(rows), generator=rng)[: int(torch.randint(4, 9, (1,), generator=rng))].tolist()
    pairs = [[rows[i]["sentence1"], rows[i]["sentence2"]] for i in pick]
    pairs[0][1] = pairs[0][1] + " " + pairs[-1][1]  # pairs of different lengths: padding must be masked
    return pairs


@pytest.mark.check(points=4, cell="test-inference", title={"zh": "載回的 adapter 模型給出相同的 logits", "en": "the reloaded adapter model gives the same logits"},
                   hint={"zh": "照 adapter_config.json 插入 adapter，再 load_state_dict(strict=False)；兩句一起 tokenize；傳入 attention_mask；eval()。",
                         "en": "Insert adapters as adapter_config.json says, then load_state_dict(strict=False); tokenize both "
                               "sentences together; pass attention_mask; eval()."})
def test_logits_match_artifact(submission, profile, rng, grader_tmp):
    from common_utils.models import load_tokenizer
    from common_utils.training import model_device, to_device

    pairs = _pairs(rng)
    model = peft_tester.bottleneck_model(submission.nb("02-train").artifact_path("artifacts/adapters"), profile, grader_tmp)
    tok = load_tokenizer(profile, "bert")
    enc = tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True, max_length=64, return_tensors="pt")
    enc = to_device(enc, model_device(model))
    with torch.no_grad():
        want = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.cpu()
        unmasked = model(input_ids=enc["input_ids"]).logits.cpu()
    got = submission.nb(NB).call("logits_on", pairs)
    if tuple(got.shape) != tuple(want.shape):
        raise Diagnosed(say(f"logits 形狀應為 {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                            f"The logits should have shape {tuple(want.shape)}; got {tuple(got.shape)}."))
    if torch.allclose(got, want, atol=1e-4, rtol=1e-4):
        return
    if torch.allclose(got, unmasked, atol=1e-4, rtol=1e-4):
        raise Diagnosed(say("logits 等於沒有 attention_mask 的結果：請傳入 attention_mask。",
                            "The logits equal those without attention_mask: pass attention_mask."))
    gap = (got - want).abs().max().item()
    raise Diagnosed(say(f"logits 與 grader 用你存下的 adapter 算出的結果最多差 {gap:.3g}：adapter 照設定插入了嗎？兩句是否一起 tokenize？",
                        f"The logits differ by up to {gap:.3g} from the grader's, computed from your saved adapters: were "
                        "the adapters inserted as configured? Are both sentences tokenized together?"))
