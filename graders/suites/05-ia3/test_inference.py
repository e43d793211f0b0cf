"""03-inference: the student's load_ia3 on an adapter the grader made gives the grader's own logits."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites.artifacts import probe_ids
from graders.suites.peft_tester import PeftCase, base_model, load_adapter

NB = "03-inference"
IA3 = PeftCase(family="llama", method="ia3", notebook="02-train", adapter="artifacts/ia3-adapter")


@pytest.mark.check(points=3, cell="test-inference", title={"zh": "load_ia3 載入 grader 做的 IA3 adapter，logits 相同",
                                                           "en": "load_ia3 loads an IA3 adapter the grader made, same logits"},
                   hint={"zh": "PeftModel.from_pretrained(新的 base, folder)，用傳進來的 folder，再 eval()。",
                         "en": "PeftModel.from_pretrained(a fresh base, folder), with the folder given, then eval()."})
def test_loads_grader_adapter(submission, profile, rng, grader_tmp, make_ia3_adapter):
    from common_utils.training import model_device

    folder = make_ia3_adapter(rng, "probe")
    ids = torch.cat([probe_ids(profile), torch.randint(3, 200, (1, 4), generator=rng)], dim=1)  # a per-student tail
    adapted, plain_model = load_adapter(folder, base_model(IA3, profile), grader_tmp), base_model(IA3, profile)
    with torch.no_grad():  # each on its model's device, compared on the CPU
        want = adapted(input_ids=ids.to(model_device(adapted))).logits.cpu()
        plain = plain_model(input_ids=ids.to(model_device(plain_model))).logits.cpu()
    got = submission.nb(NB).call("logits_on", submission.put(folder, "grader-adapters/probe"), ids)
    if tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want, atol=1e-5, rtol=1e-4):
        return
    if tuple(got.shape) == tuple(plain.shape) and torch.allclose(got, plain, atol=1e-5, rtol=1e-4):
        raise Diagnosed(say("logits 等於沒有 adapter 的 base：IA3 向量沒有載入。", "The logits equal the bare base's: the IA3 vectors were not loaded."))
    raise Diagnosed(say("logits 與 grader 載入同一個 adapter 的結果不同：請載入傳進來的 folder（PeftModel.from_pretrained），再 eval()。",
                        "The logits differ from the grader's loading of the same adapter: load the folder you are given "
                        "(PeftModel.from_pretrained), then eval()."))
