"""03-inference: a P-tuning adapter the grader makes, loaded and run by the student's code on a padded batch."""
import pytest

from graders.suites import peft_tester


@pytest.mark.check(points=4, cell="test-inference", title={"zh": "載回 adapter 並分類（有 padding 的 batch）",
                                                           "en": "reload an adapter and classify (a padded batch)"},
                   hint={"zh": "PeftModel.from_pretrained(新的 base, folder)；傳入 input_ids 與 attention_mask。",
                         "en": "PeftModel.from_pretrained(a fresh base, folder); pass input_ids and attention_mask."})
def test_logits_with_adapter(submission, profile, rng, grader_tmp, draw_config):
    peft_tester.require_adapter_logits(lambda folder, texts: submission.nb("03-inference").call("logits_on", folder, texts),
                                       submission.put, draw_config(rng), profile, rng, grader_tmp, "sentiment")
