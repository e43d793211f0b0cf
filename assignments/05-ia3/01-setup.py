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
# # 05-1 環境與參數量（Setup）
#
# **IA3**（Liu et al., 2022, *Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning*,
# arXiv:2205.05638）不加新的矩陣，而是學三組 **逐元素的縮放向量**：
# $l_k$ 乘在 attention 的 keys 上、$l_v$ 乘在 values 上、$l_{ff}$ 乘在 feed-forward 的中間 activation 上
# （也就是 `down_proj` 的 **輸入**）。向量初始化為 1，所以訓練開始時模型與 base 完全相同。
#
# 這個作業分四個 notebook（共用 `artifacts/`）：
# 1. **01-setup**（本 notebook）：用公式算出 IA3 訓練多少參數；
# 2. **02-train**：從零寫 `IA3Linear`，和 peft 的 IA3 比對，用 peft 在指令資料上訓練；
# 3. **03-inference**：把 adapter 載回新的 base model；
# 4. **04-merge-and-deploy**：縮放是線性的，可以 merge 回權重：keys/values 縮放 **列**（輸出），feed-forward 縮放 **行**（輸入）。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

from common_utils.models import load_model
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
base = load_model("llama", PROFILE)
print(f"profile={PROFILE} | {base.config.num_hidden_layers} layers | hidden {base.config.hidden_size}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 參數量的公式
#
# 實作 `ia3_parameter_count(config)`（`config` 是 dict，鍵為 `hidden_size`、`num_attention_heads`、
# `num_key_value_heads`、`intermediate_size`、`num_hidden_layers`），回傳整個模型 IA3 向量的元素個數：
# - $l_k$、$l_v$ 的長度是 `k_proj`、`v_proj` 的 **輸出** 維度：`num_key_value_heads × head_dim`，
#   `head_dim = hidden_size // num_attention_heads`（grouped-query attention 時 key/value 的 head 比 query 少）；
# - $l_{ff}$ 的長度是 `down_proj` 的 **輸入** 維度 `intermediate_size`；
# - 每一層各一組。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ia3_parameter_count(config: dict) -> int:
    ### BEGIN SOLUTION
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    return config["num_hidden_layers"] * (2 * kv + config["intermediate_size"])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
small = {"hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 16, "num_hidden_layers": 1}
assert ia3_parameter_count(small) == 8 + 8 + 16, "一層：l_k (8) + l_v (8) + l_ff (16)"

# %% nbgrader={"grade": false, "grade_id": "summary", "locked": true, "schema_version": 3, "solution": false, "task": false}
n_ia3 = ia3_parameter_count(base.config.to_dict())
n_total = sum(p.numel() for p in base.parameters())
summary = {"ia3": n_ia3, "total": n_total, "fraction": n_ia3 / n_total}
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))
print(f"IA3 trains {n_ia3:,} of {n_total:,} parameters ({100 * n_ia3 / n_total:.3f}%)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def count_on(config: dict) -> int:
    return int(ia3_parameter_count(dict(config)))
