"""01-perplexity: the window plan, and sliding-window NLL against a per-token brute force in the grader."""
import math

import pytest
import torch

from graders.suites.evaluation_oracles import brute_force_nll, close, require

NB = "01-perplexity"
T_PLAN = {"zh": "window_plan：視窗的起點、終點與新 token 數", "en": "window_plan: window bounds and new-token counts"}
H_PLAN = {"zh": "begin = 0, stride, …；end = min(begin + max_length, seq_len)；n_new = end − 前一個 end；end 到底就停。",
          "en": "begin = 0, stride, ...; end = min(begin + max_length, seq_len); n_new = end - previous end; stop at the end."}
T_NLL = {"zh": "滑動視窗 NLL 等於逐 token 暴力計算", "en": "sliding-window NLL equals a per-token brute force"}
H_NLL = {"zh": "上下文的 label 設 -100；logits 去掉最後一個位置、labels 去掉第一個；計分數是實際計分的 token 數，不是 n_new 的總和。",
         "en": "Set context labels to -100; drop the last logit and the first label; count the tokens actually scored, "
               "not the sum of n_new."}


def _cases(rng, vocab: int) -> list[tuple[torch.Tensor, int, int]]:
    """A text shorter than the window, a long one with overlapping windows, and one without overlap."""
    max_length = int(torch.randint(12, 20, (1,), generator=rng))
    stride = int(torch.randint(3, max_length - 2, (1,), generator=rng))
    lengths = (max_length - 4, 3 * max_length + int(torch.randint(1, 9, (1,), generator=rng)), 2 * max_length + 3)
    ids = [torch.randint(3, vocab, (1, n), generator=rng) for n in lengths]
    return [(ids[0], max_length, stride), (ids[1], max_length, stride), (ids[2], max_length, max_length)]


@pytest.mark.check(points=1, cell="test-window-plan", title=T_PLAN, hint=H_PLAN,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_window_plan(submission, reference, rng):
    seq_len, max_length = int(torch.randint(30, 90, (1,), generator=rng)), int(torch.randint(8, 16, (1,), generator=rng))
    stride = int(torch.randint(2, max_length, (1,), generator=rng))
    got = submission.nb(NB).call("window_plan", seq_len, max_length, stride)
    want = reference.nb(NB).call("window_plan", seq_len, max_length, stride)
    require([list(w) for w in got] == want, f"window_plan({seq_len}, {max_length}, {stride}) 應為 {want}，實際 {got}。",
            f"window_plan({seq_len}, {max_length}, {stride}) should be {want}, got {got}.")


@pytest.mark.check(points=2, cell="test-window-plan", title=T_PLAN, hint=H_PLAN, visibility="hidden")
def test_window_plan_edges(submission, reference, rng):
    max_length = int(torch.randint(6, 12, (1,), generator=rng))
    for seq_len, stride in ((max_length - 1, 2), (max_length, 3), (4 * max_length, max_length), (3 * max_length + 1, 1)):
        got = submission.nb(NB).call("window_plan", seq_len, max_length, stride)
        want = reference.nb(NB).call("window_plan", seq_len, max_length, stride)
        require([list(w) for w in got] == want, f"window_plan({seq_len}, {max_length}, {stride}) 應為 {want}，實際 {got}。",
                f"window_plan({seq_len}, {max_length}, {stride}) should be {want}, got {got}.")


@pytest.mark.check(points=2, cell="test-sliding-nll", title={"zh": "計分的 token 數正確", "en": "exact count of scored tokens"},
                   hint=H_NLL, timeout=120)
def test_scored_token_counts(submission, grader_model, rng):
    for ids, max_length, stride in _cases(rng, grader_model.config.vocab_size):
        _, want = brute_force_nll(grader_model, ids, max_length, stride)
        got = submission.nb(NB).call("sliding_window_nll", ids, max_length, stride)["n_scored"]
        require(got == want, f"長度 {ids.shape[1]}、max_length {max_length}、stride {stride}：應計分 {want} 個 token，實際 {got}。",
                f"Length {ids.shape[1]}, max_length {max_length}, stride {stride}: {want} tokens should be scored, got {got}.")


@pytest.mark.check(points=3, cell="test-sliding-nll", title=T_NLL, hint=H_NLL, visibility="hidden", timeout=120)
def test_nll_equals_brute_force(submission, grader_model, assignment, rng):
    rtol = assignment.settings["targets"]["nll_rtol"]
    for ids, max_length, stride in _cases(rng, grader_model.config.vocab_size):
        want, _ = brute_force_nll(grader_model, ids, max_length, stride)
        got = submission.nb(NB).call("sliding_window_nll", ids, max_length, stride)["nll_sum"]
        require(close(got, want, rtol=rtol), f"長度 {ids.shape[1]}、stride {stride}：NLL 總和應為 {want:.6f}，實際 {got}。",
                f"Length {ids.shape[1]}, stride {stride}: the NLL sum should be {want:.6f}, got {got}.")


@pytest.mark.check(points=1, cell="test-sliding-nll", title={"zh": "困惑度 = exp(平均 NLL)", "en": "perplexity = exp(mean NLL)"},
                   hint=H_NLL, visibility="hidden", timeout=120)
def test_perplexity_from_brute_force(submission, grader_model, assignment, rng):
    ids, max_length, stride = _cases(rng, grader_model.config.vocab_size)[1]
    nll, n = brute_force_nll(grader_model, ids, max_length, stride)
    got, want = submission.nb(NB).call("perplexity", ids, max_length, stride), math.exp(nll / n)
    require(close(got, want, rtol=10 * assignment.settings["targets"]["nll_rtol"]),
            f"困惑度應為 {want:.4f}，實際 {got}。", f"The perplexity should be {want:.4f}, got {got}.")
