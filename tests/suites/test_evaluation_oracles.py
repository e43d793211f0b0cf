"""The 40-evaluation-data grader's own oracles are right on cases small enough to check by hand."""
from __future__ import annotations

import torch

from graders.suites.evaluation_oracles import brute_force_nll, datasketch_candidates, datasketch_minhash, scoring_windows


def test_windows_score_every_token_but_the_first_when_they_overlap():
    assert [t for _, t in scoring_windows(10, 6, 4)] == list(range(1, 10))
    assert scoring_windows(10, 6, 4)[-1] == (4, 9)


def test_windows_without_overlap_skip_each_window_start():
    assert [t for _, t in scoring_windows(12, 4, 4)] == [1, 2, 3, 5, 6, 7, 9, 10, 11]


def test_brute_force_equals_one_forward_pass_when_the_text_fits():
    from common_utils.models import load_model

    model = load_model("llama", "tiny").eval()
    ids = torch.randint(3, 500, (1, 20), generator=torch.Generator().manual_seed(0))
    nll, n = brute_force_nll(model, ids, 32, 8)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
    assert n == 19
    assert abs(nll + float(logp.gather(-1, ids[0, 1:, None]).sum())) < 1e-4 * abs(nll)


def test_identical_sets_are_lsh_candidates_and_disjoint_ones_are_not():
    words = [f"x{i}" for i in range(50)]
    same, twin = datasketch_minhash(words, 64, 1), datasketch_minhash(words[::-1], 64, 1)
    other = datasketch_minhash([f"y{i}" for i in range(50)], 64, 1)
    assert datasketch_candidates([same, twin, other], 64, 16, 4) == {(0, 1)}
