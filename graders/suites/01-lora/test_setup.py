"""01-setup: the Alpaca prompt and prompt-token masking."""
import pytest
import torch

from graders.plugin import say

NB = "01-setup"
T_FORMAT = {"zh": "format_prompt：Alpaca 格式", "en": "format_prompt: the Alpaca template"}
H_FORMAT = {"zh": "沒有 input 時整段 '### Input:' 都不要出現；結尾是 '### Response:\\n'。",
            "en": "Without input, leave out the whole '### Input:' block; end with '### Response:\\n'."}
T_MASK = {"zh": "build_example：prompt 的 label 設為 -100", "en": "build_example: prompt labels are -100"}
H_MASK = {"zh": "labels = [-100]×len(prompt) + response + [eos]，再截斷到 max_length。",
          "en": "labels = [-100]*len(prompt) + response + [eos], then cut to max_length."}


def _random_text(rng, n=6):
    alphabet = "abcdefgxyz貓狗天地你好 123"
    return "".join(alphabet[int(i)] for i in torch.randint(len(alphabet), (n,), generator=rng))


@pytest.mark.check(points=1, cell="test-format-prompt", title=T_FORMAT, hint=H_FORMAT)
def test_format_prompt(submission, rng):
    ex = {"instruction": _random_text(rng), "input": _random_text(rng), "output": "x"}
    got = submission.nb(NB).call("format_prompt", ex)
    want = f"### Instruction:\n{ex['instruction']}\n\n### Input:\n{ex['input']}\n\n### Response:\n"
    assert got == want, say(f"prompt 應為 {want!r}，實際 {got!r}。", f"Expected {want!r}, got {got!r}.")


@pytest.mark.check(points=2, cell="test-format-prompt", title=T_FORMAT, hint=H_FORMAT, visibility="hidden")
def test_format_prompt_matches_reference(submission, reference, rng):
    for inp in ("", "   ", _random_text(rng, 3)):
        ex = {"instruction": _random_text(rng, 9), "input": inp, "output": "y"}
        assert submission.nb(NB).call("format_prompt", ex) == reference.nb(NB).call("format_prompt", ex)


@pytest.mark.check(points=1, cell="test-build-example", title=T_MASK, hint=H_MASK)
def test_prompt_tokens_are_masked(submission, rng):
    prompt = [int(i) for i in torch.randint(3, 500, (7,), generator=rng)]
    response = [int(i) for i in torch.randint(3, 500, (4,), generator=rng)]
    got = submission.nb(NB).call("build_example", prompt, response, 2, 64)
    want = [-100] * 7 + response + [2]
    assert got["labels"] == want, say(f"labels 應為 {want}，實際 {got['labels']}。", f"labels should be {want}, got {got['labels']}.")


@pytest.mark.check(points=2, cell="test-build-example", title=T_MASK, hint=H_MASK, visibility="hidden")
def test_build_example_matches_reference(submission, reference, rng):
    for p_len, r_len, max_len in ((5, 5, 64), (9, 6, 12), (20, 3, 8)):
        prompt = [int(i) for i in torch.randint(3, 500, (p_len,), generator=rng)]
        response = [int(i) for i in torch.randint(3, 500, (r_len,), generator=rng)]
        args = (prompt, response, 2, max_len)
        assert submission.nb(NB).call("build_example", *args) == reference.nb(NB).call("build_example", *args)
