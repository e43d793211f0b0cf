# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # 40-3 去重：完全重複與 MinHash + LSH 近似重複
#
# 網頁語料裡同一篇文章常出現很多次：大小寫、空白、標點不同（**完全重複**），或被轉貼時改了幾個字
# （**近似重複**）。重複資料浪費算力，也讓模型背誦、讓評估被污染（Lee et al., 2022,
# *Deduplicating Training Data Makes Language Models Better*）。
#
# 近似重複用 Jaccard 相似度 $J(A,B) = |A\cap B| / |A\cup B|$ 衡量（$A, B$ 是文件的 shingle 集合）。
# 兩兩比較是 $O(n^2)$；**MinHash**（Broder, 1997）把每份文件壓成 `num_perm` 個數字，
# 兩個簽章相同位置相等的比例是 $J$ 的不偏估計；**LSH** 把簽章切成 `b` 個 band、每個 band `r` 列，
# 只比較至少有一個 band 完全相同的文件，被選為候選的機率是 $1 - (1 - s^r)^b$。
# grader 會拿你的結果和 `datasketch` 比較。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import hashlib
import json
import struct
import unicodedata
from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from common_utils.datasets import load_eval_dataset

ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
CORPUS = [row["text"] for row in load_eval_dataset("web_corpus")]
SHINGLE_K = 5        # character 5-grams: works for Chinese (no spaces) and English alike
NUM_PERM = 128
SEED = 1
THRESHOLD = 0.7      # pairs with Jaccard >= 0.7 count as near-duplicates
MERSENNE = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)
print(f"{len(CORPUS)} documents")


def sha1_hash32(data: bytes) -> int:
    """The first 4 bytes of SHA-1, little-endian (datasketch's default 32-bit hash)."""
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of each random hash h -> (a*h + b) mod (2^61 - 1), drawn as datasketch draws them."""
    gen = np.random.RandomState(seed)
    ab = np.array([(gen.randint(1, MERSENNE, dtype=np.uint64), gen.randint(0, MERSENNE, dtype=np.uint64))
                   for _ in range(num_perm)], dtype=np.uint64).T
    return ab[0], ab[1]


# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
# The grader calls your functions through these (sets and numpy arrays cross as sorted lists of ints).
def seam_shingles(text: str, k: int) -> list[str]:
    return sorted(shingles(text, k))


def seam_signature(items: list[str], num_perm: int, seed: int) -> list[int]:
    return [int(v) for v in minhash_signature(set(items), num_perm, seed)]


def seam_estimate(sig1: list[int], sig2: list[int]) -> float:
    return estimate_jaccard(np.array(sig1, dtype=np.uint64), np.array(sig2, dtype=np.uint64))


def seam_candidates(signatures: list[list[int]], bands: int, rows: int) -> list[list[int]]:
    return [list(p) for p in lsh_candidates([np.array(s, dtype=np.uint64) for s in signatures], bands, rows)]


# %% [markdown] nbgrader={"grade": false, "grade_id": "exact-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 完全重複：正規化後的雜湊
#
# `normalize_text`：Unicode **NFKC**、轉小寫、刪掉標點與符號（`unicodedata.category` 以 `P` 或 `S` 開頭的字元）、
# 把連續空白（含換行）合成一個空格、去掉頭尾空白。
# `exact_dedup(texts)`：用正規化後文字的 SHA-256 判斷重複，回傳 **保留** 的文件索引（每組重複只留第一次出現的）。

# %% nbgrader={"grade": false, "grade_id": "exact-dedup", "locked": false, "schema_version": 3, "solution": true, "task": false}
def normalize_text(text: str) -> str:
    ### BEGIN SOLUTION
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PS")
    return " ".join(text.split())
    ### END SOLUTION


def exact_dedup(texts: list[str]) -> list[int]:
    ### BEGIN SOLUTION
    seen, kept = set(), []
    for i, text in enumerate(texts):
        digest = hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(i)
    return kept
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-exact-dedup", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert normalize_text("  Hello,   WORLD!\n") == "hello world"
assert normalize_text("ＡＢＣ，你好。") == "abc你好", normalize_text("ＡＢＣ，你好。")
assert exact_dedup(["a b.", "A  B!", "c", "a b"]) == [0, 2]

# %% [markdown] nbgrader={"grade": false, "grade_id": "minhash-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. Shingles 與 MinHash
#
# - `shingles(text, k)`：正規化後文字的所有長度 `k` 的字元子字串（**包含最後一個**，共 `len - k + 1` 個位置）的集合；
#   比 `k` 短的非空文字就是 `{整段文字}`，空字串是空集合。
# - `minhash_signature(items, num_perm, seed)`：對每個 item 算 `h = sha1_hash32(item.encode("utf-8"))`，
#   每個 permutation 的值是 `(a * h + b) % MERSENNE & MAX_HASH`（用 `np.uint64` 陣列計算，和 datasketch
#   一樣讓乘法在 64 位元自然溢位），簽章是每個 permutation 在所有 item 上的 **最小值**；
#   空集合的簽章每格都是 `MAX_HASH`。回傳 `np.uint64` 陣列（長度 `num_perm`）。
# - `estimate_jaccard(sig1, sig2)`：相同位置相等的比例。

# %% nbgrader={"grade": false, "grade_id": "minhash", "locked": false, "schema_version": 3, "solution": true, "task": false}
def shingles(text: str, k: int = SHINGLE_K) -> set[str]:
    ### BEGIN SOLUTION
    text = normalize_text(text)
    if len(text) < k:
        return {text} if text else set()
    return {text[i:i + k] for i in range(len(text) - k + 1)}
    ### END SOLUTION


def minhash_signature(items, num_perm: int = NUM_PERM, seed: int = SEED) -> np.ndarray:
    ### BEGIN SOLUTION
    a, b = permutations(num_perm, seed)
    signature = np.full(num_perm, MAX_HASH, dtype=np.uint64)
    for item in items:
        h = np.uint64(sha1_hash32(item.encode("utf-8")))
        signature = np.minimum(signature, np.bitwise_and((a * h + b) % MERSENNE, MAX_HASH))
    return signature
    ### END SOLUTION


def estimate_jaccard(sig1: np.ndarray, sig2: np.ndarray) -> float:
    ### BEGIN SOLUTION
    return float(np.mean(np.asarray(sig1) == np.asarray(sig2)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-minhash", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
assert shingles("abcdef", 5) == {"abcde", "bcdef"}, shingles("abcdef", 5)
assert shingles("ab", 5) == {"ab"} and shingles("", 5) == set()
_s1, _s2 = set(map(str, range(0, 80))), set(map(str, range(40, 120)))
_est = estimate_jaccard(minhash_signature(_s1), minhash_signature(_s2))
assert abs(_est - 1 / 3) < 0.2, f"估計值 {_est:.3f} 離真正的 1/3 太遠"

# %% [markdown] nbgrader={"grade": false, "grade_id": "lsh-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. LSH：band 與 row
#
# - `candidate_probability(s, bands, rows)` = $1 - (1 - s^{r})^{b}$。
# - `lsh_candidates(signatures, bands, rows)`：第 `i` 個 band 是簽章的第 `i*rows` 到 `(i+1)*rows` 格；
#   兩份文件只要有 **任一** band 完全相同就是候選。回傳排序好的 `[(i, j), ...]`，`i < j`。
# - 選 `BANDS`、`ROWS`（`BANDS * ROWS <= NUM_PERM`），讓相似度 `THRESHOLD` 的文件被選為候選的機率至少 0.9，
#   同時相似度 0.3 的文件被選中的機率低於 0.1；畫出 $s$ 對候選機率的曲線（S-curve）。

# %% nbgrader={"grade": false, "grade_id": "lsh", "locked": false, "schema_version": 3, "solution": true, "task": false}
def candidate_probability(s: float, bands: int, rows: int) -> float:
    ### BEGIN SOLUTION
    return 1.0 - (1.0 - s**rows) ** bands
    ### END SOLUTION


def lsh_candidates(signatures: list[np.ndarray], bands: int, rows: int) -> list[tuple[int, int]]:
    ### BEGIN SOLUTION
    pairs = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}
        for doc, sig in enumerate(signatures):
            key = np.asarray(sig, dtype=np.uint64)[band * rows:(band + 1) * rows].tobytes()
            buckets.setdefault(key, []).append(doc)
        for docs in buckets.values():
            pairs.update(combinations(docs, 2))
    return sorted(pairs)
    ### END SOLUTION


### BEGIN SOLUTION
BANDS, ROWS = 20, 5
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-lsh", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
assert abs(candidate_probability(0.5, 4, 2) - (1 - 0.75**4)) < 1e-12
assert BANDS * ROWS <= NUM_PERM
assert candidate_probability(THRESHOLD, BANDS, ROWS) >= 0.9 and candidate_probability(0.3, BANDS, ROWS) < 0.1
_sig = [np.arange(8, dtype=np.uint64), np.arange(8, dtype=np.uint64) + np.array([0, 0, 0, 0, 9, 9, 9, 9], dtype=np.uint64)]
assert lsh_candidates(_sig, 2, 4) == [(0, 1)] and lsh_candidates(_sig[::-1][:1] + [_sig[0] + 1], 2, 4) == []

# %% [markdown] nbgrader={"grade": false, "grade_id": "corpus-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 在語料上去重
#
# 下面的 cell 先做完全去重，再對保留的文件算 MinHash 與 LSH 候選，存下結果與 S-curve 圖。

# %% nbgrader={"grade": false, "grade_id": "dedup-corpus", "locked": true, "schema_version": 3, "solution": false, "task": false}
KEPT = exact_dedup(CORPUS)
SIGNATURES = [minhash_signature(shingles(CORPUS[i])) for i in KEPT]
CANDIDATES = [(KEPT[i], KEPT[j]) for i, j in lsh_candidates(SIGNATURES, BANDS, ROWS)]
NEAR = [(i, j) for i, j in CANDIDATES
        if estimate_jaccard(SIGNATURES[KEPT.index(i)], SIGNATURES[KEPT.index(j)]) >= THRESHOLD]
xs = np.linspace(0, 1, 101)
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(xs, [candidate_probability(x, BANDS, ROWS) for x in xs], label=f"b={BANDS}, r={ROWS}")
ax.axvline(THRESHOLD, color="gray", linestyle="--")
ax.set_xlabel("Jaccard similarity")
ax.set_ylabel("P(candidate)")
ax.legend()
fig.tight_layout()
fig.savefig(ARTIFACTS / "s_curve.png", dpi=100)
plt.close(fig)
(ARTIFACTS / "dedup.json").write_text(json.dumps({"exact_kept": KEPT, "bands": BANDS, "rows": ROWS,
                                                  "candidates": CANDIDATES, "near_duplicates": NEAR}))
print(f"exact dedup kept {len(KEPT)} of {len(CORPUS)}; {len(CANDIDATES)} LSH candidates; {len(NEAR)} near-duplicate pairs")

# %% nbgrader={"grade": true, "grade_id": "test-dedup-corpus", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert 0 < len(KEPT) < len(CORPUS), "語料裡有完全重複的文件"
assert NEAR, "語料裡有近似重複的文件"
