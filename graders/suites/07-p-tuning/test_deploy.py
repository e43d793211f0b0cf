"""04-deploy: several P-tuning adapters served on one base, on adapters and requests the grader draws."""
import pytest

from graders.suites import peft_tester


@pytest.mark.check(points=4, cell="test-serve", title={"zh": "一個 base 服務多個 adapter：每個請求等於單獨載入該 adapter",
                                                       "en": "one base serves several adapters: each request equals its adapter alone"},
                   hint={"zh": "每個請求先 set_adapter(名字)（換上 virtual token 與分類頭）再分類；輸出順序與 requests 相同。",
                         "en": "set_adapter(name) before each request (it swaps the virtual tokens and the head); keep the requests' order."})
def test_serves_several_adapters(submission, profile, rng, grader_tmp, draw_config):
    peft_tester.require_adapters_served(lambda paths, requests: submission.nb("04-deploy").call("serve_requests", paths, requests),
                                        submission.put, draw_config, profile, rng, grader_tmp, "sentiment")
