"""03-inference and 04-deploy: generation with a soft prompt; several soft prompts served on one base."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester

PROMPTS = ["### Instruction:\nWhat is the capital of France?\n\n### Response:\n",
           "### Instruction:\nReverse the word\n\n### Input:\ncat\n\n### Response:\n",
           "### Instruction:\n把單字翻成英文\n\n### Input:\n狗\n\n### Response:\n"]


def grader_generate(folder, prompts, max_new_tokens, profile) -> list[str]:
    """Greedy decoding with the soft prompt in ``folder``, done by the grader itself."""
    from peft import PeftModel

    from common_utils.models import load_model, load_tokenizer

    model = PeftModel.from_pretrained(load_model("llama", profile), str(folder)).eval()
    return peft_tester.greedy_texts(model, load_tokenizer(profile), prompts, max_new_tokens)


@pytest.mark.check(points=1, cell="test-generate", title={"zh": "生成結果已存檔", "en": "generations saved"},
                   hint={"zh": "每個 prompt 一個字串，只含新產生的文字。", "en": "One string per prompt, only the new text."})
def test_generations_written(submission):
    peft_tester.require_generations(submission.nb("03-inference"))


@pytest.mark.check(points=3, cell="test-generate", title={"zh": "soft prompt 的 greedy decoding", "en": "greedy decoding with a soft prompt"},
                   hint={"zh": "PeftModel.from_pretrained 套到新的 base；do_sample=False；只 decode prompt 之後的 token，skip_special_tokens=True。",
                         "en": "PeftModel.from_pretrained on a fresh base; do_sample=False; decode only the tokens after the prompt, skip_special_tokens=True."},
                   timeout=300, visibility="hidden")  # its expected text would show the kit how to decode
def test_generation_with_soft_prompt(submission, profile, rng, make_prompt_adapter):
    folder = make_prompt_adapter(rng, "gen", int(torch.randint(4, 12, (1,), generator=rng)))
    want = grader_generate(folder, PROMPTS, 8, profile)
    got = submission.nb("03-inference").call("generate_texts", submission.put(folder, "grader-adapters/gen"), PROMPTS, 8)
    if got == want:
        return
    if any(isinstance(g, str) and g.startswith("### Instruction") for g in got):
        raise Diagnosed(say("輸出包含了 prompt：只 decode 新產生的 token。", "The output includes the prompt: decode only the new tokens."))
    raise Diagnosed(say(f"soft prompt 的 greedy 輸出與預期不同：預期 {want[0]!r}，實際 {got[0]!r}（第一個 prompt）。",
                        f"Greedy output with the soft prompt differs: expected {want[0]!r}, got {got[0]!r} (first prompt)."))


@pytest.mark.check(points=4, cell="test-serve", title={"zh": "一個 base 同時服務多個 soft prompt", "en": "one base serves several soft prompts"},
                   hint={"zh": "每個請求先 set_adapter(名字) 再生成；所有 adapter 以不同 adapter_name 載入同一個 PeftModel。",
                         "en": "set_adapter(name) before each request; load every adapter into one PeftModel under its own adapter_name."},
                   timeout=300, visibility="hidden")  # its expected text would show the kit how to decode
def test_serves_several_adapters(submission, profile, rng, make_prompt_adapter):
    folders = {name: make_prompt_adapter(rng, name, int(torch.randint(4, 12, (1,), generator=rng))) for name in ("alpha", "beta")}
    alone = {name: grader_generate(folder, PROMPTS[:2], 8, profile) for name, folder in folders.items()}
    requests = [["alpha", PROMPTS[0]], ["beta", PROMPTS[0]], ["beta", PROMPTS[1]], ["alpha", PROMPTS[1]]]
    want = [alone[name][PROMPTS.index(prompt)] for name, prompt in requests]
    paths = {name: submission.put(folder, f"grader-adapters/{name}") for name, folder in folders.items()}
    got = submission.nb("04-deploy").call("serve_requests", paths, requests, 8)
    if got == want:
        return
    if got == [alone["alpha"][PROMPTS.index(p)] for _, p in requests]:
        raise Diagnosed(say("每個請求都用了第一個 adapter：切換前要 set_adapter(名字)。",
                            "Every request used the first adapter: call set_adapter(name) before generating."))
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    raise Diagnosed(say(f"請求 {wrong} 的輸出與該 adapter 單獨載入時不同。",
                        f"Requests {wrong} differ from the output of their adapter loaded alone."))
