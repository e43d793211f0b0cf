"""03-inference: the adapter reloaded onto a fresh base, greedy decoding."""
import pytest

from graders.suites import peft_tester

NB = "03-inference"


@pytest.mark.check(points=1, cell="test-generate", title={"zh": "生成結果已存檔", "en": "generations saved"},
                   hint={"zh": "每個 prompt 一個字串，只含新產生的文字。", "en": "One string per prompt, only the new text."})
def test_generations_written(submission):
    peft_tester.require_generations(submission.nb(NB))


@pytest.mark.check(points=4, cell="test-generate", title={"zh": "greedy decoding 與參考解答一致", "en": "greedy decoding matches the reference"},
                   hint={"zh": "do_sample=False；只 decode prompt 之後的 token，skip_special_tokens=True；套用 adapter 到新的全精度 base。",
                         "en": "do_sample=False; decode only the tokens after the prompt with skip_special_tokens=True; "
                               "apply the adapter to a fresh full-precision base."}, visibility="hidden", timeout=300)
def test_generation_matches_reference(submission, reference):
    # Both sides decode with the reference's adapter, so a weak student adapter costs nothing here.
    target = submission.put(reference.nb("02-train").artifact_path("artifacts/lora-adapter"),
                            "reference-artifacts/lora-adapter")
    prompts = reference.nb(NB).value("PROMPTS")
    got = submission.nb(NB).call("generate_texts", target, prompts, 12)
    want = reference.nb(NB).call("generate_texts", "artifacts/lora-adapter", prompts, 12)
    assert got == want
