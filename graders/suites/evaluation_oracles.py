"""Trusted oracles of the 40-evaluation-data suite, computed in the grader from first principles.

Each one is the plainest correct computation, slow where that makes it obviously right (one
forward pass per scored token); students' answers are compared with these, with the reference
notebook, and with the libraries the lab names (lm-evaluation-harness, datasketch, rouge-score).
"""
from __future__ import annotations

import unicodedata

import torch

from graders.plugin import say


def require(ok: bool, zh: str, en: str) -> None:
    """Fail with a bilingual message that says what differs (never an empty assertion)."""
    if not ok:
        raise AssertionError(say(zh, en))


def close(got, want: float, rtol: float = 0.0, atol: float = 0.0) -> bool:
    return isinstance(got, (int, float)) and not isinstance(got, bool) and abs(got - want) <= atol + rtol * abs(want)


def scoring_windows(seq_len: int, max_length: int, stride: int) -> list[tuple[int, int]]:
    """(window begin, token) for every token a sliding window can score: token t is scored in the
    first window whose end passes t, with the window's tokens before t as its context."""
    scored, covered = [], 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        scored += [(begin, t) for t in range(max(covered, begin + 1), end)]
        covered = end
        if end == seq_len:
            break
    return scored


@torch.no_grad()
def brute_force_nll(model, ids: torch.Tensor, max_length: int, stride: int) -> tuple[float, int]:
    """Summed -log p over the scored tokens, one forward pass of exactly its context per token."""
    ids = ids.reshape(-1)
    total, plan = 0.0, scoring_windows(len(ids), max_length, stride)
    for begin, t in plan:
        logits = model(ids[None, begin:t]).logits[0, -1].double()
        total -= float(torch.log_softmax(logits, -1)[ids[t]])
    return total, len(plan)


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join("".join(ch for ch in text if unicodedata.category(ch)[0] not in "PS").split())


def char_shingles(text: str, k: int) -> set[str]:
    text = normalize_text(text)
    return {text[i:i + k] for i in range(len(text) - k + 1)} if len(text) >= k else ({text} if text else set())


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def datasketch_minhash(items, num_perm: int, seed: int):
    """datasketch's MinHash in its pre-2.0 ('legacy') scheme, the one the lab teaches."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, scheme="legacy")
    m.update_batch([item.encode("utf-8") for item in items])
    return m


def datasketch_candidates(minhashes: list, num_perm: int, bands: int, rows: int) -> set[tuple[int, int]]:
    """Pairs (i < j) that share at least one LSH band in datasketch's MinHashLSH."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    for i, m in enumerate(minhashes):
        lsh.insert(i, m)
    return {(min(i, j), max(i, j)) for i, m in enumerate(minhashes) for j in lsh.query(m) if i != j}
