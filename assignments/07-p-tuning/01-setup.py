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
# # 07-1 環境與參數量（Setup）
#
# **P-tuning**（Liu et al., 2021, *GPT Understands, Too*, arXiv:2103.10385）和 prompt tuning 一樣，在輸入前面接上
# $n$ 個連續的 virtual token，凍結整個語言模型。差別在 **這些向量怎麼來**：prompt tuning 直接把 $n \times d$ 的
# 矩陣當參數訓練；P-tuning 則用一個小網路 **prompt encoder** 產生它們：
#
# $$ h_i = \mathrm{MLP}\big([\overrightarrow{\mathrm{LSTM}}(e_{0:i});\ \overleftarrow{\mathrm{LSTM}}(e_{i:n})]\big) $$
#
# 論文（§3.2）給了兩個理由：(1) **離散性**：預訓練後的 word embedding 高度離散，直接最佳化的向量容易卡在初始化
# 附近的局部最小值；(2) **關聯性**：prompt 的各個 token 應該彼此相依，而不是 $n$ 個獨立的向量。雙向 LSTM 讓每個
# virtual token 看到其他 token，MLP 再把它映射回 embedding 空間。peft 的 `PromptEncoderConfig` 提供兩種
# reparameterization：`"LSTM"`（論文的做法）與 `"MLP"`（只有 MLP，peft 標為推薦、預設）。
#
# 訓練完之後 encoder 就不需要了：只要存下它的 **輸出**（$n \times d$ 個數），推論時和 prompt tuning 完全一樣。
#
# 這個作業分四個 notebook（共用 `artifacts/`）：
# 1. **01-setup**（本 notebook）：用公式算出兩種 prompt encoder 各有多少參數；
# 2. **02-train**：從零寫 `PromptEncoder`，和 peft 的 `PromptEncoder` 比對；用 peft 的 `PromptEncoderConfig`
#    在情感分類（sentiment）上訓練 tiny BERT；
# 3. **03-inference**：把 adapter 載回新的 base model 分類；
# 4. **04-deploy**：P-tuning 改的是輸入，不是權重，**不能** merge；改成存檔、重新載入、一個 base 服務多個 adapter。
#
# 預設 `COURSE_PROFILE=tiny`：BERT-family 小模型，CPU 上幾分鐘內跑完。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

from peft import PromptEncoderConfig, get_peft_model

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
rows = load_course_dataset("sentiment", PROFILE, split="train")
print(f"profile={PROFILE} | {len(rows):,} training rows | e.g. {rows[0]}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. Prompt encoder 的參數量
#
# 記號：$n$ 個 virtual token、模型的 hidden size $d$（`token_dim`）、encoder 的 hidden size $h$
# （`encoder_hidden_size`）、LSTM 的層數 $L$（`encoder_num_layers`）。每個 `nn.Linear(a, b)` 有 $ab + b$ 個參數。
#
# - 兩種都有：`embedding = nn.Embedding(n, d)`，$n d$ 個參數（virtual token 的「輸入」）。
# - `"MLP"`：三層 `Linear(d, h) → ReLU → Linear(h, h) → ReLU → Linear(h, d)`。
# - `"LSTM"`：**雙向** LSTM（`nn.LSTM(d, h, num_layers=L, bidirectional=True)`），再接
#   `Linear(2h, 2h) → ReLU → Linear(2h, d)`。一個方向的一層 LSTM 有四個 gate，每個 gate 有輸入權重、遞迴權重與
#   **兩個** bias（PyTorch 的 `bias_ih` 與 `bias_hh`）：$4h \cdot (\text{輸入維度} + h) + 2 \cdot 4h$；
#   第一層的輸入維度是 $d$，之後每一層的輸入是上一層兩個方向接起來的 $2h$。
#
# 實作 `prompt_encoder_parameter_count(num_virtual_tokens, token_dim, encoder_hidden_size, encoder_type, num_layers=2)`，
# `encoder_type` 是 `"MLP"` 或 `"LSTM"`（`"MLP"` 不使用 `num_layers`）。用公式算，不要建模型：grader 會抽 $n, d, h, L$，
# 和 peft 的 `PromptEncoder` 實際的參數個數比對。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prompt_encoder_parameter_count(num_virtual_tokens: int, token_dim: int, encoder_hidden_size: int,
                                   encoder_type: str, num_layers: int = 2) -> int:
    ### BEGIN SOLUTION
    n, d, h = num_virtual_tokens, token_dim, encoder_hidden_size
    embedding = n * d
    if encoder_type == "MLP":
        return embedding + (d * h + h) + (h * h + h) + (h * d + d)
    lstm = 0
    for layer in range(num_layers):
        inputs = d if layer == 0 else 2 * h
        lstm += 2 * (4 * h * (inputs + h) + 2 * 4 * h)  # two directions
    head = (2 * h * 2 * h + 2 * h) + (2 * h * d + d)
    return embedding + lstm + head
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert prompt_encoder_parameter_count(1, 2, 3, "MLP") == 1 * 2 + (2 * 3 + 3) + (3 * 3 + 3) + (3 * 2 + 2), \
    "MLP：embedding + 三個 Linear"
assert prompt_encoder_parameter_count(4, 8, 4, "LSTM", 1) > prompt_encoder_parameter_count(4, 8, 4, "MLP"), \
    "LSTM 版本的參數比 MLP 多"

# %% [markdown] nbgrader={"grade": false, "grade_id": "fraction-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 可訓練比例（算出來，不是抄來的）
#
# 下面的 cell 在 tiny/full BERT 上用 peft 建兩種 P-tuning（`task_type="SEQ_CLS"`），把你的公式加上分類頭，
# 和 peft 實際標成可訓練的參數並列。分類頭是新任務 **新初始化** 的：peft 的 `SEQ_CLS` 會把 `classifier`
# 放進 `modules_to_save`，讓它保持可訓練（原本課程教材把它凍結了，模型只能用一個隨機的分類頭）。

# %% nbgrader={"grade": false, "grade_id": "fraction", "locked": true, "schema_version": 3, "solution": false, "task": false}
NUM_VIRTUAL_TOKENS, ENCODER_HIDDEN = 10, 64
summary = {}
for encoder_type in ("MLP", "LSTM"):
    model = get_peft_model(load_model("bert", PROFILE), PromptEncoderConfig(
        task_type="SEQ_CLS", num_virtual_tokens=NUM_VIRTUAL_TOKENS, encoder_hidden_size=ENCODER_HIDDEN,
        encoder_reparameterization_type=encoder_type))
    formula = prompt_encoder_parameter_count(NUM_VIRTUAL_TOKENS, model.config.hidden_size, ENCODER_HIDDEN, encoder_type)
    head = sum(p.numel() for n, p in model.named_parameters() if "classifier" in n and p.requires_grad)
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    summary[encoder_type] = {"formula_encoder": formula, "head": head, "counted_trainable": counted, "total": total,
                             "fraction": counted / total}
    print(f"{encoder_type:4s} encoder {formula:,} + head {head:,} = {formula + head:,} | counted {counted:,} "
          f"of {total:,} ({100 * counted / total:.2f}%)")
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def count_on(num_virtual_tokens: int, token_dim: int, encoder_hidden_size: int, num_layers: int) -> dict:
    """Your formula for both encoder types, on sizes the grader draws."""
    return {t: int(prompt_encoder_parameter_count(num_virtual_tokens, token_dim, encoder_hidden_size, t, num_layers))
            for t in ("MLP", "LSTM")}
