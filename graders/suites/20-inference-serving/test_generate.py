"""01-kv-cache: batched greedy generation (left padding, eos per row) and the cache's speed-up."""
import statistics

import pytest

from graders.plugin import say
from graders.suites.inference import greedy_alone, random_prompts

NB = "01-kv-cache"
NEW_TOKENS = 8


@pytest.mark.check(points=3, cell="test-generate", title={"zh": "批次中每一列等於單獨生成", "en": "each batch row equals its prompt decoded alone"},
                   hint={"zh": "左 padding；attention mask 要遮掉 pad；位置編號只算真 token。",
                         "en": "Pad on the left; the attention mask hides the pads; positions count real tokens only."})
def test_rows_equal_alone(submission, model, tokenizer, rng):
    prompts = random_prompts(rng, tokenizer, 4)
    got = submission.nb(NB).call("batched_generate", prompts, NEW_TOKENS)
    want = [greedy_alone(model, p, NEW_TOKENS) for p in prompts]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w] if len(got) == len(want) else list(range(len(want)))
    assert not bad, say(f"第 {bad} 列與單獨生成不同：預期 {[want[i] for i in bad]}，實際 {[got[i] if i < len(got) else None for i in bad]}。",
                        f"Rows {bad} differ from decoding alone: expected {[want[i] for i in bad]}, "
                        f"got {[got[i] if i < len(got) else None for i in bad]}.")


@pytest.mark.check(points=2, cell="test-generate", title={"zh": "每列遇到 eos 各自停止", "en": "each row stops at its eos"},
                   hint={"zh": "某列產生 eos 後就完成（含 eos），之後不再輸出；其他列繼續。",
                         "en": "A row is done once it emits eos (kept); it outputs nothing after; the others go on."},
                   visibility="hidden")
def test_eos_per_row(submission, model, tokenizer, rng):
    prompts = random_prompts(rng, tokenizer, 3)
    alone = [greedy_alone(model, p, NEW_TOKENS) for p in prompts]
    # An eos the grader picks: the third token of row 0, so that row stops early and others may not.
    eos = alone[0][2]
    want = [row[:row.index(eos) + 1] if eos in row else row for row in alone]
    got = submission.nb(NB).call("batched_generate", prompts, NEW_TOKENS, eos)
    assert got == want, say(f"以 token {eos} 當 eos：預期 {want}，實際 {got}。",
                            f"With token {eos} as eos: expected {want}, got {got}.")


def _timed(handle, prompts, new_tokens: int, use_cache: bool) -> float:
    """CPU seconds the notebook's kernel spends on one call, read by the grader from outside (wall
    time would count whatever else a loaded grading machine runs: seen failing a right answer)."""
    notebook = handle.nb(NB)
    before = notebook.cpu_seconds()
    notebook.call("timed_generate", prompts, new_tokens, use_cache)
    return notebook.cpu_seconds() - before


def decode_speedup(handle, prompts) -> float:
    """Uncached over cached time of the decoding steps alone: a one-token run (the prompt's
    forward pass and the channel's round trip) is subtracted from both."""
    base = _timed(handle, prompts, 1, True)
    cached = _timed(handle, prompts, DECODE_TOKENS, True) - base
    uncached = _timed(handle, prompts, DECODE_TOKENS, False) - base
    return uncached / max(cached, 1e-3)


DECODE_TOKENS = 64


@pytest.mark.check(points=2, cell="test-generate", title={"zh": "快取帶來的加速（與參考解答比）", "en": "speed-up of the cache (against the reference)"},
                   hint={"zh": "use_cache=True 時每一步只餵新的 token，不要重算整段。",
                         "en": "With use_cache=True feed only the new token at each step; never recompute the whole sequence."},
                   visibility="hidden", timeout=300)  # needs the reference, which a student's own check lacks
def test_cache_speedup(submission, reference, tokenizer, rng, assignment):
    # Long prompts make recomputation costly; the grader times both sides itself, in alternation.
    prompts = random_prompts(rng, tokenizer, 4, low=120, high=160)
    ratios = []
    for i in range(3):
        order = [submission, reference] if i % 2 == 0 else [reference, submission]
        speedup = {id(h): decode_speedup(h, prompts) for h in order}
        ratios.append(speedup[id(submission)] / speedup[id(reference)])
    target = assignment.settings["targets"]["kv_speedup_fraction"]
    median = statistics.median(ratios)
    assert median >= target, say(f"你的快取加速倍數只有參考解答的 {median:.2f} 倍（目標 ≥ {target}）。",
                                 f"Your cache's speed-up is {median:.2f}x the reference's (target >= {target}).")
