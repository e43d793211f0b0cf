"""02-speculative: greedy speculative decoding equals the target's greedy decoding (float64), and
its acceptance counts equal the grader's own count for drafts the grader scripts."""
import pytest
import torch

from graders.plugin import say
from graders.suites.inference import expected_counts, grader_model, greedy_alone, random_prompts

NB = "02-speculative"
NEW_TOKENS = 12


def run(submission, profile, rng, k: int, wrong: list[int]):
    from graders.suites.inference import grader_tokenizer

    prompt = random_prompts(rng, grader_tokenizer(profile), 1)[0]
    got = submission.nb(NB).call("run_speculative", prompt, NEW_TOKENS, k, wrong)
    want = greedy_alone(grader_model(profile, torch.float64), prompt, NEW_TOKENS)
    return got, want


def assert_tokens(got, want, case_zh, case_en):
    tokens = got.get("tokens") if isinstance(got, dict) else None
    assert tokens == want, say(f"{case_zh}：輸出應等於 target 的 greedy decoding {want}，實際 {tokens}。",
                               f"{case_en}: the output should equal the target's greedy decoding {want}; got {tokens}.")


@pytest.mark.check(points=2, cell="test-speculative", title={"zh": "draft 全猜對：輸出等於 greedy", "en": "all-accept draft: output equals greedy"},
                   hint={"zh": "全部接受時還要接上 target 給的 bonus token；滿 max_new_tokens 就截斷。",
                         "en": "When all are accepted, append the target's bonus token; cut at max_new_tokens."})
def test_all_accept(submission, profile, rng):
    k = int(torch.randint(2, 5, (1,), generator=rng))
    got, want = run(submission, profile, rng, k, [])
    assert_tokens(got, want, f"k={k}、全對", f"k={k}, all accepted")


@pytest.mark.check(points=2, cell="test-speculative", title={"zh": "draft 全猜錯：輸出等於 greedy", "en": "all-reject draft: output equals greedy"},
                   hint={"zh": "第一個猜測就被拒絕時，本輪只接上 target 的選擇。",
                         "en": "When the first guess is rejected, the round adds only the target's choice."})
def test_all_reject(submission, profile, rng):
    k = int(torch.randint(2, 5, (1,), generator=rng))
    got, want = run(submission, profile, rng, k, list(range(NEW_TOKENS)))
    assert_tokens(got, want, f"k={k}、全錯", f"k={k}, all rejected")


def diverging(rng, k: int) -> list[int]:
    """Positions where the draft goes wrong: it agrees for a few tokens (fewer than k, or more),
    then diverges, several times over the generation."""
    wrong, position = [], 0
    while position < NEW_TOKENS:
        position += int(torch.randint(0, 2 * k, (1,), generator=rng))
        wrong.append(position)
        position += 1
    return [p for p in wrong if p < NEW_TOKENS]


@pytest.mark.check(points=3, cell="test-speculative", title={"zh": "draft 先對幾個再猜錯：輸出等於 greedy",
                                                            "en": "draft that agrees for a while, then diverges: output equals greedy"},
                   hint={"zh": "只接受「從頭開始連續相同」的猜測；第一個不同之後的猜測全部丟掉，改用 target 在那個位置的選擇。",
                         "en": "Accept only the leading run of matching guesses; drop every guess after the first mismatch "
                               "and take the target's choice there."}, visibility="hidden")
def test_agree_then_diverge(submission, profile, rng):
    for k in (2, 4):
        wrong = diverging(rng, k)
        got, want = run(submission, profile, rng, k, wrong)
        assert_tokens(got, want, f"k={k}、在 {wrong} 猜錯", f"k={k}, wrong at {wrong}")


@pytest.mark.check(points=3, cell="test-speculative", title={"zh": "接受數與 grader 的計數相同", "en": "acceptance counts equal the grader's"},
                   hint={"zh": "proposed 是每輪猜的個數 m = min(k, 剩下的數量) 的總和；accepted 只算被接受的猜測，不含修正與 bonus token。",
                         "en": "proposed sums m = min(k, remaining) over rounds; accepted counts accepted guesses only, "
                               "not the correction or bonus token."}, visibility="hidden")
def test_acceptance_counts(submission, profile, rng):
    for k in (1, 3, 4):
        wrong = diverging(rng, k)
        got, _ = run(submission, profile, rng, k, wrong)
        want = expected_counts(NEW_TOKENS, k, set(wrong))
        counts = {key: got.get(key) for key in ("proposed", "accepted")} if isinstance(got, dict) else got
        assert counts == want, say(f"k={k}、在 {wrong} 猜錯：grader 算出 {want}，你的結果 {counts}。",
                                   f"k={k}, wrong at {wrong}: the grader counts {want}; yours {counts}.")
