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
# # 08-1 環境與參數量（Setup）
#
# **P-tuning v2**（Liu et al., 2022, *P-Tuning v2: Prompt Tuning Can Be Comparable to Fine-tuning Universally Across
# Scales and Tasks*, ACL 2022, arXiv:2110.07602）指出 prompt tuning 與 P-tuning（07）的兩個限制：prompt 只在
# **輸入層**，經過很多層之後對預測的影響很間接；而且在中小型模型（例如 BERT）與困難的任務上，它們比 fine-tuning 差很多。
# 解法是 **deep prompt tuning**：在 **每一層** 的 attention 前面都接上 $n$ 個可訓練的 key 與 value（prefix），
# 和 prefix tuning（Li & Liang, 2021）的做法相同，但用在 NLU：分類用 [CLS] 上的分類頭，不用 verbalizer。
#
# 每一層都有自己的 prefix，所以可訓練參數從 $n \times d$ 變成 $n \times 2 \times L \times d$（key 與 value，$L$ 層）。
# peft 裡沒有叫「P-tuning v2」的類別：它就是 `PrefixTuningConfig`（**不是** `PromptTuningConfig`，也不是 07 的
# `PromptEncoderConfig`；原本的課程教材用錯了）。
#
# **reparameterization**（`prefix_projection`）：Li & Liang 用一個 MLP 產生 prefix（$n \times d$ 的 embedding →
# Linear → Tanh → Linear 到 $2Ld$）讓訓練穩定；P-tuning v2 論文（§3.3）發現它的效果 **看任務與資料而定**，
# 原始程式碼（THUDM/P-tuning-v2）預設 `prefix_projection=False`，直接訓練每一層的 prefix。peft 的預設也是 `False`，
# 但 prefix tuning 的論文預設是開啟的：這個作業照 P-tuning v2 的原始程式碼（不投影），兩種都會計算、都會測。
#
# 這個作業分四個 notebook（共用 `artifacts/`）：
# 1. **01-setup**（本 notebook）：用公式算出有無 projection 的參數量；
# 2. **02-train**：從零寫 `PrefixEncoder` 與「把輸出切成每一層的 key/value」，和 peft 比對；用 `PrefixTuningConfig`
#    在 sentiment 上訓練 tiny BERT；
# 3. **03-inference**：把 adapter 載回新的 base model 分類；
# 4. **04-deploy**：prefix 是 attention 的額外 key/value，不是權重的修正量，**不能** merge；改成重新載入、一個 base 服務多個 adapter。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

from peft import PrefixTuningConfig, get_peft_model

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
rows = load_course_dataset("sentiment", PROFILE, split="train")
print(f"profile={PROFILE} | {len(rows):,} training rows | e.g. {rows[0]}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. Deep prompt 的參數量
#
# 記號：$n$ 個 virtual token、hidden size $d$、$L$ 層、projection 的 hidden size $h$（`encoder_hidden_size`）。
# 每個 `nn.Linear(a, b)` 有 $ab + b$ 個參數。
#
# - `prefix_projection=False`（P-tuning v2 的原始程式碼）：`nn.Embedding(n, 2·L·d)`：每個 virtual token、每一層、
#   key 與 value 各一個 $d$ 維向量，全部直接訓練。
# - `prefix_projection=True`（Li & Liang 的 reparameterization）：`nn.Embedding(n, d)`，再接
#   `Linear(d, h) → Tanh → Linear(h, 2·L·d)`。
#
# 實作 `prefix_parameter_count(num_virtual_tokens, hidden, num_layers, prefix_projection, encoder_hidden_size)`。
# 用公式算，不要建模型：grader 會抽 $n, d, L, h$，和 peft 的 `PrefixEncoder` 實際的參數個數比對（兩種都比）。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prefix_parameter_count(num_virtual_tokens: int, hidden: int, num_layers: int, prefix_projection: bool,
                           encoder_hidden_size: int) -> int:
    ### BEGIN SOLUTION
    n, d, h = num_virtual_tokens, hidden, encoder_hidden_size
    per_token = 2 * num_layers * d  # a key and a value of d numbers in every layer
    if not prefix_projection:
        return n * per_token
    return n * d + (d * h + h) + (h * per_token + per_token)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert prefix_parameter_count(3, 4, 2, False, 8) == 3 * 2 * 2 * 4, "不投影：n × 2 × L × d"
assert prefix_parameter_count(3, 4, 2, True, 8) == 3 * 4 + (4 * 8 + 8) + (8 * 16 + 16), \
    "投影：embedding n·d + Linear(d, h) + Linear(h, 2Ld)"

# %% [markdown] nbgrader={"grade": false, "grade_id": "fraction-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 可訓練比例（算出來，不是抄來的）
#
# 下面的 cell 在 tiny/full BERT 上用 peft 建兩種 P-tuning v2（`task_type="SEQ_CLS"`），把你的公式加上分類頭，
# 和 peft 實際標成可訓練的參數並列。分類頭是新初始化的：peft 的 `SEQ_CLS` 把 `classifier` 放進
# `modules_to_save`，讓它保持可訓練。

# %% nbgrader={"grade": false, "grade_id": "fraction", "locked": true, "schema_version": 3, "solution": false, "task": false}
NUM_VIRTUAL_TOKENS, ENCODER_HIDDEN = 10, 64
summary = {}
for projection in (False, True):
    model = get_peft_model(load_model("bert", PROFILE), PrefixTuningConfig(
        task_type="SEQ_CLS", num_virtual_tokens=NUM_VIRTUAL_TOKENS, prefix_projection=projection,
        encoder_hidden_size=ENCODER_HIDDEN))
    cfg = model.config
    formula = prefix_parameter_count(NUM_VIRTUAL_TOKENS, cfg.hidden_size, cfg.num_hidden_layers, projection, ENCODER_HIDDEN)
    head = sum(p.numel() for n, p in model.named_parameters() if "classifier" in n and p.requires_grad)
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    summary[f"projection={projection}"] = {"formula_prefix": formula, "head": head, "counted_trainable": counted,
                                           "total": total, "fraction": counted / total}
    print(f"prefix_projection={projection!s:5s} prefix {formula:,} + head {head:,} = {formula + head:,} | counted "
          f"{counted:,} of {total:,} ({100 * counted / total:.2f}%)")
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def count_on(num_virtual_tokens: int, hidden: int, num_layers: int, encoder_hidden_size: int) -> dict:
    """Your formula with and without projection, on sizes the grader draws."""
    return {str(p): int(prefix_parameter_count(num_virtual_tokens, hidden, num_layers, p, encoder_hidden_size))
            for p in (False, True)}
