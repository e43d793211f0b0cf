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
# # 06-1 環境與資料準備（Setup）
#
# **BitFit**（Ben Zaken, Ravfogel & Goldberg, 2022, *BitFit: Simple Parameter-efficient Fine-tuning for
# Transformer-based Masked Language-models*）只訓練模型裡的 **bias 項**（加上新任務的分類頭），其餘權重全部凍結。
# 論文發現在 BERT 上這樣就能接近 full fine-tuning 的效果，而每個任務只需要存一小組向量。
#
# 這個作業分四個 notebook，請依序執行，它們共用 `artifacts/`：
# 1. **01-setup**（本 notebook）：載入情感分類（sentiment）資料，寫 tokenize 與「BitFit 會訓練多少參數」的計算。
# 2. **02-train**：從零寫 `bitfit()`（凍結 bias 以外的一切），和課程的 `apply_bitfit` 比對，然後訓練並存檔。
# 3. **03-inference**：把存下來的 bias 向量載回一個新的 base model 做分類。
# 4. **04-merge-and-deploy**：同一個 base model 上切換多組 bias 向量，服務多個任務。
#
# 預設 `COURSE_PROFILE=tiny`：BERT-family 的小模型（已在課程語料上預訓練），CPU 上幾分鐘內跑完。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch
from torch import nn

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE, family="bert")
rows = load_course_dataset("sentiment", PROFILE, split="train")
print(f"profile={PROFILE} | vocab={len(tokenizer):,} | {len(rows):,} training rows")
print(rows[0])

# %% [markdown] nbgrader={"grade": false, "grade_id": "encode-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. Tokenize 一個 batch
#
# 實作 `encode(texts, labels, max_length)`，回傳 dict：
# - `input_ids`、`attention_mask`：用 `tokenizer(...)` 產生的 `torch.long` tensor，形狀 `(batch, seq)`；
#   長的句子 **截斷** 到 `max_length` 個 token，短的句子 **補 padding**（`attention_mask` 在 padding 處為 0）。
# - `labels`：形狀 `(batch,)` 的 `torch.long` tensor。
#
# 補到 batch 裡最長的句子或補到 `max_length` 都可以：grader 只看 `attention_mask` 為 1 的 token。

# %% nbgrader={"grade": false, "grade_id": "encode", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode(texts: list[str], labels: list[int], max_length: int = 64) -> dict:
    ### BEGIN SOLUTION
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "labels": torch.tensor(labels, dtype=torch.long)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-encode", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
enc = encode(["This movie is great.", "這本書令人失望。" * 20], [1, 0], max_length=16)
assert enc["input_ids"].shape[1] <= 16, "長句要截斷到 max_length"
assert enc["attention_mask"][0].sum() < enc["attention_mask"][1].sum(), "短句的 padding 處 attention_mask 應為 0"
assert enc["labels"].tolist() == [1, 0], "labels 應為 torch.long tensor"

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. BitFit 會訓練多少參數？
#
# 論文的做法：所有名稱以 `.bias` 結尾的參數（attention 的 query/key/value、輸出層、FFN、LayerNorm 的 bias…）
# 都可訓練；分類頭 `classifier`（weight 與 bias）是新任務 **新初始化** 的，所以也一定要訓練：
# 凍結一個隨機初始化的分類頭，模型永遠學不會（原本課程教材的錯誤之一）。
#
# 實作 `count_bitfit(model)`，回傳 `(trainable, total)` 兩個整數：
# - `trainable`：所有 bias 參數的元素個數，加上 `classifier` 的全部參數（`classifier.bias` 只算一次）；
# - `total`：模型全部參數的元素個數。
#
# 注意：LayerNorm 的 `weight` 也是一維向量，但它 **不是** bias。grader 會在它自己選的模型（不同的 label 數）上呼叫你的函式。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
HEAD = "classifier"


def count_bitfit(model: nn.Module) -> tuple[int, int]:
    ### BEGIN SOLUTION
    trainable = sum(p.numel() for name, p in model.named_parameters()
                    if name.endswith(".bias") or name.split(".")[0] == HEAD)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
base = load_model("bert", PROFILE)
n_trainable, n_total = count_bitfit(base)
assert 0 < n_trainable < n_total, "可訓練參數應大於 0、小於全部"
print(f"BitFit trains {n_trainable:,} of {n_total:,} parameters ({100 * n_trainable / n_total:.2f}%)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "summary-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 摘要
#
# 下面的 cell 把資料與參數量的統計存到 `artifacts/setup_summary.json`（比例是算出來的，不是抄來的）。

# %% nbgrader={"grade": false, "grade_id": "summary", "locked": true, "schema_version": 3, "solution": false, "task": false}
enc = encode([r["text"] for r in rows], [r["label"] for r in rows])
summary = {"rows": len(rows), "positive": int(enc["labels"].sum()), "seq_len": int(enc["input_ids"].shape[1]),
           "bitfit_trainable": n_trainable, "total": n_total, "fraction": n_trainable / n_total}
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))
print(summary)

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 透過下面的函式，在 **它選的** 輸入上呼叫你的 `encode` 與 `count_bitfit`。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def encode_on(texts: list[str], labels: list[int], max_length: int) -> dict:
    return {k: v for k, v in encode(texts, labels, max_length=max_length).items()}


def count_on(num_labels: int) -> list[int]:
    """Your count_bitfit on the profile's BERT with a fresh head of ``num_labels`` outputs."""
    probe = load_model("bert", PROFILE)
    probe.classifier = nn.Linear(probe.config.hidden_size, num_labels)
    return [int(v) for v in count_bitfit(probe)]
