"""03-inference: generation keeps the prefix (the reloaded adapter generates what the trained model
generates, and not what the base generates)."""
import pytest

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester

ADAPTER = "artifacts/prefix-adapter"
PROMPTS = ["### Instruction:\nWhat is the capital of France?\n\n### Response:\n",
           "### Instruction:\nReverse the word\n\n### Input:\ncat\n\n### Response:\n",
           "### Instruction:\n把單字翻成英文\n\n### Input:\n狗\n\n### Response:\n"]


@pytest.mark.check(points=1, cell="test-generate", title={"zh": "生成結果已存檔", "en": "generations saved"},
                   hint={"zh": "每個 prompt 一個字串，只含新產生的文字。", "en": "One string per prompt, only the new text."})
def test_generations_written(submission):
    peft_tester.require_generations(submission.nb("03-inference"))


@pytest.mark.check(points=3, cell="test-generate", title={"zh": "生成時 prefix 一直都在", "en": "generation keeps the prefix"},
                   hint={"zh": "PeftModel.from_pretrained 套到新的 base，用 PeftModel 的 generate（do_sample=False）；批次用 left padding；只 decode prompt 之後的 token。",
                         "en": "PeftModel.from_pretrained on a fresh base, generate with the PeftModel (do_sample=False); pad the batch on the left; decode only the tokens after the prompt."},
                   timeout=300, visibility="hidden")  # its expected text would show the kit how to decode
def test_generation_keeps_prefix(submission, profile):
    from common_utils.models import load_model, load_tokenizer

    trained = submission.nb("02-train").call("trained_generate", PROMPTS, 8)
    got = submission.nb("03-inference").call("generate_texts", ADAPTER, PROMPTS, 8)
    base = peft_tester.greedy_texts(load_model("gpt2", profile).eval(), load_tokenizer(profile, "gpt2"), PROMPTS, 8)
    if got == trained and got != base:
        return
    if any(isinstance(g, str) and g.startswith("### Instruction") for g in got):
        raise Diagnosed(say("輸出包含了 prompt：只 decode 新產生的 token。", "The output includes the prompt: decode only the new tokens."))
    if got == base:
        raise Diagnosed(say("輸出和沒有 prefix 的 base model 一樣：prefix 沒有用上（要用 PeftModel 的 generate）"
                            + ("，或訓練好的 prefix 沒有改變任何輸出。" if trained == base else "。"),
                            "The output equals the base model's without a prefix: the prefix was not used (generate with the PeftModel)"
                            + (", or the trained prefix changes no output." if trained == base else ".")))
    wrong = [i for i, (g, t) in enumerate(zip(got, trained)) if g != t] if len(got) == len(trained) else list(range(len(trained)))
    i = wrong[0]
    raise Diagnosed(say(f"prompt {wrong} 的輸出不同：例如第 {i} 個，載回的 adapter 生成 {got[i] if i < len(got) else None!r}，"
                        f"訓練好的模型生成 {trained[i]!r}。一次一個 prompt 和整個批次的結果要相同：批次用 left padding 了嗎？",
                        f"Prompts {wrong} differ: e.g. prompt {i}, the reloaded adapter generates {got[i] if i < len(got) else None!r}, "
                        f"the trained model {trained[i]!r}. A batch must give what one prompt at a time gives: is it padded on the left?"))
