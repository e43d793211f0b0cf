"""03-inference: the student's reloaded adapter gives the logits of the grader's own loading."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites.artifacts import probe_ids
from graders.suites.peft_tester import PeftCase, base_model, load_adapter

NB = "03-inference"
IA3 = PeftCase(family="llama", method="ia3", notebook="02-train", adapter="artifacts/ia3-adapter")


@pytest.mark.check(points=3, cell="test-inference", title={"zh": "載回的 IA3 adapter 給出相同的 logits", "en": "the reloaded IA3 adapter gives the same logits"},
                   hint={"zh": "PeftModel.from_pretrained(新的 base, folder)，再 eval()。", "en": "PeftModel.from_pretrained(a fresh base, folder), then eval()."})
def test_logits_match_artifact(submission, profile, rng, grader_tmp):
    ids = probe_ids(profile)
    ids = torch.cat([ids, torch.randint(3, 200, (1, 4), generator=rng)], dim=1)  # a per-student tail
    model = load_adapter(submission.nb("02-train").artifact_path(IA3.adapter), base_model(IA3, profile), grader_tmp)
    with torch.no_grad():
        want = model(input_ids=ids).logits
        plain = base_model(IA3, profile)(input_ids=ids).logits
    got = submission.nb(NB).call("logits_on", ids)
    if tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want, atol=1e-5, rtol=1e-4):
        return
    if tuple(got.shape) == tuple(plain.shape) and torch.allclose(got, plain, atol=1e-5, rtol=1e-4):
        raise Diagnosed(say("logits 等於沒有 adapter 的 base：IA3 向量沒有載入。", "The logits equal the bare base's: the IA3 vectors were not loaded."))
    raise Diagnosed(say("logits 與 grader 載入你的 adapter 的結果不同：請用 PeftModel.from_pretrained 並 eval()。",
                        "The logits differ from the grader's loading of your adapter: use PeftModel.from_pretrained and eval()."))
