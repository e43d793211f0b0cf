"""03-dedup: normalised exact dedup, shingles, MinHash against datasketch and the binomial interval,
LSH candidates against datasketch's MinHashLSH, and recall at the threshold on the planted corpus."""
import math
from itertools import combinations

import pytest
import torch

from graders.suites.artifacts import read_json_artifact
from graders.suites.evaluation_oracles import (char_shingles, datasketch_candidates, datasketch_minhash, jaccard,
                                               require)

NB = "03-dedup"
T_EXACT = {"zh": "正規化後的完全去重", "en": "exact dedup after normalisation"}
H_EXACT = {"zh": "NFKC、小寫、刪掉 P*/S* 類字元、空白合併；每組重複留第一個。",
           "en": "NFKC, lower-case, drop P*/S* characters, collapse whitespace; keep the first of each group."}
T_MINHASH = {"zh": "MinHash 簽章與 datasketch 相同", "en": "MinHash signatures equal datasketch's"}
H_MINHASH = {"zh": "h = sha1_hash32(item.encode())；(a*h + b) % MERSENNE & MAX_HASH 用 np.uint64 計算；每格取最小值。",
             "en": "h = sha1_hash32(item.encode()); (a*h + b) % MERSENNE & MAX_HASH in np.uint64; the minimum per slot."}
T_LSH = {"zh": "LSH 候選與 datasketch 的 MinHashLSH 相同", "en": "LSH candidates equal datasketch's MinHashLSH"}
H_LSH = {"zh": "第 i 個 band 是簽章的 [i*rows, (i+1)*rows)；任一 band 相同就是候選；回傳 i < j 的排序 list。",
         "en": "Band i is slots [i*rows, (i+1)*rows); one equal band makes a candidate; return sorted pairs with i < j."}


def _text(rng, n: int) -> str:
    alphabet = "abcde fgh，。！ABC貓狗魚天 ,.!  \n"
    return "".join(alphabet[int(i)] for i in torch.randint(len(alphabet), (n,), generator=rng))


def _corpus():
    from common_utils.datasets import load_eval_dataset

    return [row["text"] for row in load_eval_dataset("web_corpus")]


@pytest.mark.check(points=1, cell="test-exact-dedup", title={"zh": "normalize_text", "en": "normalize_text"}, hint=H_EXACT,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_normalize_text(submission, reference, rng):
    for text in [_text(rng, 24) for _ in range(4)] + ["ＦＵＬＬ　ｗｉｄｔｈ！", "Tab\tand\r\nnewline…"]:
        got = submission.nb(NB).call("normalize_text", text)
        want = reference.nb(NB).call("normalize_text", text)
        require(got == want, f"normalize_text({text!r}) 應為 {want!r}，實際 {got!r}。",
                f"normalize_text({text!r}) should be {want!r}, got {got!r}.")


@pytest.mark.check(points=3, cell="test-exact-dedup", title=T_EXACT, hint=H_EXACT, visibility="hidden")
def test_exact_dedup(submission, reference, rng):
    base = [_text(rng, 20) for _ in range(5)]
    texts = base + [base[1].upper() + " !", "  " + base[3].replace(" ", "\n"), base[0] + "。", "ｆｕｌｌ", "full"]
    order = [int(i) for i in torch.randperm(len(texts), generator=rng)]
    texts = [texts[i] for i in order]
    got = submission.nb(NB).call("exact_dedup", texts)
    want = reference.nb(NB).call("exact_dedup", texts)
    require(got == want, f"exact_dedup 應保留 {want}，實際 {got}。", f"exact_dedup should keep {want}, got {got}.")


@pytest.mark.check(points=2, cell="test-minhash", title={"zh": "字元 shingles（含最後一個）", "en": "character shingles (the last one too)"},
                   hint={"zh": "range(len - k + 1)；比 k 短的文字是 {文字}。", "en": "range(len - k + 1); a text shorter than k is {text}."},
                   visibility="hidden")
def test_shingles(submission, reference, rng):
    for n, k in ((30, 5), (9, 3), (6, 5), (3, 5), (0, 4)):
        text = _text(rng, n)
        got = submission.nb(NB).call("seam_shingles", text, k)
        want = reference.nb(NB).call("seam_shingles", text, k)
        require(got == want, f"shingles({text!r}, {k})：應有 {len(want)} 個，實際 {len(got)} 個（{sorted(set(want) ^ set(got))[:4]} 不同）。",
                f"shingles({text!r}, {k}): {len(want)} expected, got {len(got)} ({sorted(set(want) ^ set(got))[:4]} differ).")


@pytest.mark.check(points=3, cell="test-minhash", title=T_MINHASH, hint=H_MINHASH, visibility="hidden")
def test_signature_equals_datasketch(submission, rng):
    for num_perm, seed in ((64, 1), (128, int(torch.randint(2, 1000, (1,), generator=rng)))):
        items = sorted(char_shingles(_text(rng, 60), 5))
        got = submission.nb(NB).call("seam_signature", items, num_perm, seed)
        want = [int(v) for v in datasketch_minhash(items, num_perm, seed).hashvalues]
        diff = sum(a != b for a, b in zip(got, want)) + abs(len(got) - len(want))
        require(diff == 0, f"num_perm={num_perm}, seed={seed}：有 {diff} 格與 datasketch 不同。",
                f"num_perm={num_perm}, seed={seed}: {diff} slots differ from datasketch.")


@pytest.mark.check(points=2, cell="test-minhash", title={"zh": "估計值落在二項信賴區間內", "en": "estimates lie in the binomial interval"},
                   hint={"zh": "estimate = 相同位置相等的比例；Var = J(1−J)/num_perm。", "en": "estimate = fraction of equal slots; Var = J(1-J)/num_perm."})
def test_estimates_within_binomial_interval(submission, assignment, rng):
    z, num_perm = assignment.settings["targets"]["minhash_z"], 512
    for overlap in (0.2, 0.5, 0.8):
        n = 200
        shared = int(n * overlap)
        offset = int(torch.randint(0, 10**6, (1,), generator=rng))
        a = {f"w{offset + i}" for i in range(n)}
        b = {f"w{offset + i}" for i in range(n - shared, 2 * n - shared)}
        j = jaccard(a, b)
        sigs = [submission.nb(NB).call("seam_signature", sorted(s), num_perm, 7) for s in (a, b)]
        est = submission.nb(NB).call("seam_estimate", *sigs)
        half = z * math.sqrt(j * (1 - j) / num_perm)
        require(isinstance(est, float) and abs(est - j) <= half,
                f"真正的 Jaccard {j:.3f}，估計 {est}，超出 ±{half:.3f}（z={z}）。",
                f"Exact Jaccard {j:.3f}, estimate {est}, outside +-{half:.3f} (z={z}).")


@pytest.mark.check(points=1, cell="test-lsh", title={"zh": "S-curve 公式", "en": "the S-curve formula"},
                   hint={"zh": "1 − (1 − s^r)^b", "en": "1 - (1 - s^r)^b"}, visibility="hidden")
def test_candidate_probability(submission, rng):
    for _ in range(4):
        s, b, r = float(torch.rand(1, generator=rng)), int(torch.randint(1, 30, (1,), generator=rng)), int(torch.randint(1, 9, (1,), generator=rng))
        got, want = submission.nb(NB).call("candidate_probability", s, b, r), 1 - (1 - s**r) ** b
        require(isinstance(got, float) and abs(got - want) < 1e-9, f"candidate_probability({s:.3f}, {b}, {r}) 應為 {want:.6f}，實際 {got}。",
                f"candidate_probability({s:.3f}, {b}, {r}) should be {want:.6f}, got {got}.")


def _corpus_minhashes(kept: list[int], num_perm: int, seed: int, k: int = 5):
    corpus = _corpus()
    return [datasketch_minhash(sorted(char_shingles(corpus[i], k)), num_perm, seed) for i in kept]


@pytest.mark.check(points=2, cell="test-lsh", title=T_LSH, hint=H_LSH, visibility="hidden", timeout=120)
def test_lsh_candidates_equal_datasketch(submission, rng):
    corpus = _corpus()
    docs = sorted(int(i) for i in torch.randperm(len(corpus), generator=rng)[:60])
    bands, rows = int(torch.randint(8, 33, (1,), generator=rng)), int(torch.randint(2, 5, (1,), generator=rng))
    minhashes = _corpus_minhashes(docs, 128, 1)
    got = submission.nb(NB).call("seam_candidates", [[int(v) for v in m.hashvalues] for m in minhashes], bands, rows)
    want = datasketch_candidates(minhashes, 128, bands, rows)
    got_set = {tuple(p) for p in got}
    require(got_set == want, f"b={bands}, r={rows}：datasketch 有 {len(want)} 對候選，你的有 {len(got_set)} 對，"
            f"{len(want ^ got_set)} 對不同。", f"b={bands}, r={rows}: datasketch finds {len(want)} candidate pairs, "
            f"yours {len(got_set)}; {len(want ^ got_set)} differ.")


def _pairs_near(threshold: float, rng, count: int = 160, size: int = 60) -> list[tuple[set, set]]:
    """Pairs of token sets whose Jaccard lies in [threshold, threshold + 0.05] (at least the
    nearest value above it): where a banding too strict for the threshold loses them."""
    jaccards = {m: (size - m) / (size + m) for m in range(size)}
    near = [m for m, j in jaccards.items() if threshold <= j <= threshold + 0.05] or [max(m for m, j in jaccards.items() if j >= threshold)]
    pairs = []
    for i in range(count):
        m = near[i % len(near)]
        ids = torch.randperm(10**6, generator=rng)[: size + m].tolist()
        pairs.append(({f"t{v}" for v in ids[:size]}, {f"t{v}" for v in ids[m:]}))
    return pairs


@pytest.mark.check(points=2, cell="test-lsh", title={"zh": "門檻處的召回率", "en": "recall at the threshold"},
                   hint={"zh": "相似度 THRESHOLD 的候選機率要夠高：調大 b 或調小 r。", "en": "Raise P(candidate) at THRESHOLD: more bands or fewer rows."},
                   timeout=120,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_recall_at_threshold(submission, reference, assignment, rng):
    target = assignment.settings["targets"]["lsh_recall"]
    bands, rows = submission.nb(NB).value("BANDS"), submission.nb(NB).value("ROWS")
    num_perm, threshold, k = (reference.nb(NB).value(n) for n in ("NUM_PERM", "THRESHOLD", "SHINGLE_K"))
    require(isinstance(bands, int) and isinstance(rows, int) and 0 < bands * rows <= num_perm,
            f"BANDS × ROWS 要介於 1 和 {num_perm}，實際 {bands} × {rows}。", f"BANDS x ROWS must be in 1..{num_perm}, got {bands} x {rows}.")
    seed = reference.nb(NB).value("SEED")
    # The corpus's planted near-duplicates (most well above the threshold) ...
    kept = reference.nb(NB).value("KEPT")
    corpus = _corpus()
    sets = [char_shingles(corpus[i], k) for i in kept]
    true = {(i, j) for i, j in combinations(range(len(kept)), 2) if jaccard(sets[i], sets[j]) >= threshold}
    found = datasketch_candidates([datasketch_minhash(sorted(s), num_perm, seed) for s in sets], num_perm, bands, rows)
    recall = len(true & found) / len(true)
    require(recall >= target, f"b={bands}, r={rows}：{len(true)} 對 Jaccard ≥ {threshold} 的文件只找到 {recall:.1%}（至少 {target:.0%}）。",
            f"b={bands}, r={rows}: only {recall:.1%} of the {len(true)} pairs with Jaccard >= {threshold} found (need {target:.0%}).")
    # ... and pairs the grader draws just above it, where the S-curve must already be high.
    pairs = _pairs_near(threshold, rng)
    hashes = [datasketch_minhash(sorted(s), num_perm, seed) for pair in pairs for s in pair]
    found = datasketch_candidates(hashes, num_perm, bands, rows)
    near = sum((2 * i, 2 * i + 1) in found for i in range(len(pairs))) / len(pairs)
    lo, hi = min(jaccard(*p) for p in pairs), max(jaccard(*p) for p in pairs)
    require(near >= target, f"b={bands}, r={rows}：Jaccard 在 {lo:.3f}–{hi:.3f} 的 {len(pairs)} 對只找到 {near:.1%}"
            f"（至少 {target:.0%}）；門檻處的候選機率 1-(1-s^r)^b 太低。",
            f"b={bands}, r={rows}: only {near:.1%} of {len(pairs)} pairs with Jaccard {lo:.3f}-{hi:.3f} found "
            f"(need {target:.0%}); P(candidate) = 1-(1-s^r)^b is too low at the threshold.")


@pytest.mark.check(points=2, cell="test-dedup-corpus", title={"zh": "語料的完全去重結果", "en": "exact dedup of the corpus"},
                   hint=H_EXACT, visibility="hidden")
def test_corpus_exact_kept(submission, reference):
    got = read_json_artifact(submission.nb(NB), "artifacts/dedup.json").get("exact_kept")
    want = reference.nb(NB).value("KEPT")
    require(got == want, f"應保留 {len(want)} 份文件，實際 {len(got or [])} 份。", f"{len(want)} documents should be kept, got {len(got or [])}.")


@pytest.mark.check(points=2, cell="test-dedup-corpus", title={"zh": "語料的 LSH 候選與 datasketch 相同", "en": "corpus LSH candidates equal datasketch's"},
                   hint=H_LSH, visibility="hidden", timeout=120)
def test_corpus_candidates_equal_datasketch(submission, reference):
    dedup = read_json_artifact(submission.nb(NB), "artifacts/dedup.json")
    kept = reference.nb(NB).value("KEPT")
    num_perm, seed, k = (reference.nb(NB).value(n) for n in ("NUM_PERM", "SEED", "SHINGLE_K"))
    bands, rows = dedup.get("bands"), dedup.get("rows")
    require(isinstance(bands, int) and isinstance(rows, int) and 0 < bands * rows <= num_perm,
            "dedup.json 的 bands/rows 不正確。", "bands/rows in dedup.json are not valid.")
    found = datasketch_candidates(_corpus_minhashes(kept, num_perm, seed, k), num_perm, bands, rows)
    want = {(kept[i], kept[j]) for i, j in found}
    got = {tuple(p) for p in dedup.get("candidates", [])}
    require(got == want, f"datasketch 在語料上找到 {len(want)} 對候選，你的有 {len(got)} 對，{len(want ^ got)} 對不同。",
            f"datasketch finds {len(want)} candidate pairs in the corpus, yours {len(got)}; {len(want ^ got)} differ.")
