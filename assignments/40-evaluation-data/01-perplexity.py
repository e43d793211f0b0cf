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
# # 40-1 滑動視窗困惑度（Sliding-window perplexity）
#
# 模組 04「評估與資料工程」共四個 notebook：
# 1. **01-perplexity**（本 notebook）：長文本的困惑度，用滑動視窗（window + stride）計算。
# 2. **02-benchmark-scoring**：用 log-likelihood 做選擇題評分（與 lm-evaluation-harness 一致）、ROUGE-L，以及評估報告。
# 3. **03-dedup**：完全重複與近似重複（MinHash + LSH）去重。
# 4. **04-quality-filter**：Gopher / C4 風格的品質過濾規則。
#
# 困惑度（perplexity）是平均每個 token 負對數似然的指數：
# $\mathrm{PPL} = \exp\big(\frac{1}{N}\sum_{t} -\log p(x_t \mid x_{<t})\big)$。
# 模型一次只能看 `max_length` 個 token，所以長文本要切成互相重疊的視窗；每個 token
# **只算一次**，而且重疊的部分只當作上下文（context），它們的 label 要設成 `-100`。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import math
from pathlib import Path

import torch

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
model = load_model("llama", PROFILE).eval()
IGNORE_INDEX = -100
print(f"profile={PROFILE} | vocab={len(tokenizer):,} | max positions={model.config.max_position_embeddings}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "plan-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 視窗的切法
#
# 視窗從 `begin = 0, stride, 2·stride, …` 開始，每個視窗涵蓋 `ids[begin:end]`，
# `end = min(begin + max_length, seq_len)`。前一個視窗結束在 `prev_end`（第一個視窗時為 0），
# 這個視窗 **新的** token 是最後 `n_new = end - prev_end` 個，只有它們要計分。
# 一旦 `end == seq_len` 就停止。
#
# 實作 `window_plan(seq_len, max_length, stride)`，回傳 `[(begin, end, n_new), ...]`。
# 例：`window_plan(10, 6, 4) == [(0, 6, 6), (4, 10, 4)]`。

# %% nbgrader={"grade": false, "grade_id": "window-plan", "locked": false, "schema_version": 3, "solution": true, "task": false}
def window_plan(seq_len: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """The windows that cover ``seq_len`` tokens; refuses a stride longer than the window."""
    if not 0 < stride <= max_length:
        raise ValueError(f"stride must be in 1..max_length, got {stride}")
    ### BEGIN SOLUTION
    plan, prev_end = [], 0
    for begin in range(0, seq_len, stride):
        end = min(begin + max_length, seq_len)
        plan.append((begin, end, end - prev_end))
        prev_end = end
        if end == seq_len:
            break
    return plan
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-window-plan", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
assert window_plan(10, 6, 4) == [(0, 6, 6), (4, 10, 4)], window_plan(10, 6, 4)
assert window_plan(5, 8, 4) == [(0, 5, 5)], "比視窗短的文本只有一個視窗"
assert sum(n for _, _, n in window_plan(100, 16, 5)) == 100, "每個 token 恰好出現在一個視窗的新 token 裡"

# %% [markdown] nbgrader={"grade": false, "grade_id": "nll-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 視窗裡的負對數似然
#
# 對每個視窗：`labels = window.clone()`，再把前面 `len(window) - n_new` 個（上下文）設成 `-100`。
# Causal LM 在位置 `i` 預測位置 `i+1`，所以 logits 要去掉最後一個位置、labels 要去掉第一個（shift）。
# 每個視窗的第一個 token 在視窗裡沒有上下文，不能計分：`stride < max_length` 時（視窗重疊），長度 `n`
# 的文本計分的 token 數 **正好是 `n - 1`**；`stride == max_length`（不重疊）時是 `n - 視窗數`。
#
# 實作 `sliding_window_nll(input_ids, max_length, stride)`，回傳
# `{"nll_sum": 所有計分 token 的 -log p 總和, "n_scored": 計分的 token 數}`。
# 注意：Hugging Face 文件的範例用 `loss * n_new` 近似總和，會多算一個 token；這裡要精確計數。

# %% nbgrader={"grade": false, "grade_id": "sliding-nll", "locked": false, "schema_version": 3, "solution": true, "task": false}
@torch.no_grad()
def sliding_window_nll(input_ids: torch.Tensor, max_length: int, stride: int) -> dict:
    """Summed -log p of every token after the first, each scored once, and how many were scored."""
    ids = torch.as_tensor(input_ids).reshape(1, -1)
    nll_sum, n_scored = 0.0, 0
    ### BEGIN SOLUTION
    for begin, end, n_new in window_plan(ids.shape[1], max_length, stride):
        window = ids[:, begin:end]
        labels = window.clone()
        labels[:, : window.shape[1] - n_new] = IGNORE_INDEX  # context: already scored by an earlier window
        logp = torch.log_softmax(model(window).logits[:, :-1].double(), dim=-1)
        target = labels[:, 1:]
        scored = target != IGNORE_INDEX
        token_logp = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        nll_sum -= float(token_logp[scored].sum())
        n_scored += int(scored.sum())
    ### END SOLUTION
    return {"nll_sum": nll_sum, "n_scored": n_scored}


def perplexity(input_ids: torch.Tensor, max_length: int, stride: int) -> float:
    """exp(mean negative log-likelihood per scored token)."""
    ### BEGIN SOLUTION
    result = sliding_window_nll(input_ids, max_length, stride)
    return math.exp(result["nll_sum"] / result["n_scored"])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-sliding-nll", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
_ids = torch.randint(3, len(tokenizer), (1, 40), generator=torch.Generator().manual_seed(0))
_whole = sliding_window_nll(_ids, 64, 32)
assert _whole["n_scored"] == 39, f"長度 40 的文本應計分 39 個 token，實際 {_whole['n_scored']}"
_slid = sliding_window_nll(_ids, 16, 16)
assert _slid["n_scored"] == 37, f"不重疊的 3 個視窗各少算第一個 token，應為 37，實際 {_slid['n_scored']}"
assert abs(perplexity(_ids, 64, 32) - math.exp(_whole["nll_sum"] / 39)) < 1e-6 * perplexity(_ids, 64, 32)

# %% [markdown] nbgrader={"grade": false, "grade_id": "strides-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. Stride 的影響
#
# 較小的 stride 讓每個 token 有更長的上下文（困惑度通常較低），但要跑更多視窗。
# 下面的 cell 在課程的摘要資料上量測，存到 `artifacts/perplexity.json`，並畫出曲線。

# %% nbgrader={"grade": false, "grade_id": "strides", "locked": true, "schema_version": 3, "solution": false, "task": false}
from common_utils.datasets import load_course_dataset

TEXT = "\n".join(row["document"] for row in load_course_dataset("summaries", PROFILE, limit=12))
TEXT_IDS = tokenizer(TEXT, return_tensors="pt")["input_ids"]
MAX_LENGTH = 64
STRIDES = [8, 16, 32, 64]
ppl_rows = []
for s in STRIDES:
    windows = len(window_plan(TEXT_IDS.shape[1], MAX_LENGTH, s))
    ppl_rows.append({"stride": s, "windows": windows, "perplexity": perplexity(TEXT_IDS, MAX_LENGTH, s)})
(ARTIFACTS / "perplexity.json").write_text(json.dumps({"max_length": MAX_LENGTH, "tokens": TEXT_IDS.shape[1],
                                                       "rows": ppl_rows}, indent=2))
for row in ppl_rows:
    print(row)
