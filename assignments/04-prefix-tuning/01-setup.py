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
# # 04-1 環境與參數量（Setup）
#
# **Prefix tuning**（Li & Liang, 2021, *Prefix-Tuning: Optimizing Continuous Prompts for Generation*,
# arXiv:2101.00190）凍結整個語言模型，在 **每一層** attention 的 keys 與 values 前面接上 $n$ 個可訓練的向量
# （prefix）。和 prompt tuning（03）只改輸入的 embedding 不同，prefix 直接出現在每一層的 activation 裡，
# 所以它能影響的比 soft prompt 深：論文 §4.1 指出只改 embedding 層的表達能力較弱，§7.2 的 embedding-only 實驗也顯示
# 它明顯比在每一層放 prefix 差。
#
# 真實 token 在第 $\ell$ 層的 attention 看到的是 $[P_k^{(\ell)}; K^{(\ell)}]$ 與 $[P_v^{(\ell)}; V^{(\ell)}]$：
# prefix 本身不經過模型計算，它們就是那一層的 key/value。
#
# 這個作業分四個 notebook，請依序執行，它們共用同一個資料夾裡的 `artifacts/`：
# 1. **01-setup**（本 notebook）：prefix 接上之後，attention mask 與 position ids 怎麼算（含 left padding）；
#    用公式算出 prefix tuning 訓練多少參數（有、沒有 reparameterisation MLP）。
# 2. **02-train**：從零寫 `PrefixEncoder` 與帶 prefix 的 forward，和 peft 的 `PrefixTuningConfig` 比對，再用 peft 訓練。
# 3. **03-inference**：把存下的 prefix 載回新的 base model 生成文字。
# 4. **04-deploy**：prefix 不是任何權重的修正量，**不能合併**；改為部署：拿掉 MLP、一個 base 服務多個 prefix。
#
# 預設 `COURSE_PROFILE=tiny`：模型由設定檔與固定種子建立，CPU 上幾分鐘內跑完。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch

from common_utils.models import load_model
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
base = load_model("gpt2", PROFILE)
print(f"profile={PROFILE} | {base.config.n_layer} layers | {base.config.n_head} heads | hidden {base.config.n_embd}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "mask-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. Attention mask 與 position ids
#
# prefix 放在每一層的 KV cache 裡，**輸入的長度不變**（和 prompt tuning 不同：logits 仍是 $L$ 個，labels 不用延長）。
# 但模型要知道 cache 裡多了 $n$ 個位置：
# - `attention_mask` 前面補 $n$ 個 **1**，形狀變成 `(batch, n + L)`：每個真實 token 都要能 attend 到 prefix。
# - `position_ids`：GPT-2 用絕對位置 embedding。一列單獨跑的時候，cache 已有 $n$ 個位置，所以第一個真實
#   token 的位置是 $n$，接著 $n+1, n+2, \dots$（這也是 GPT-2 收到長度 $n$ 的 cache 時自己算的位置）。
#   批次裡 **left padding** 的列，真實 token 從第 `pad` 個位置才開始：它們的位置仍要是 $n, n+1, \dots$，
#   不能是 $n + \text{pad}, \dots$，否則同一句話放在批次裡和單獨跑會得到不同結果。
#   padding 位置的值不影響結果（它們被 mask 掉），請給 $n$。
#
# 實作 `prefix_mask_and_positions(attention_mask, num_virtual_tokens)`：輸入 `(batch, L)` 的 0/1 整數 tensor
# （可能有 left 或 right padding），回傳 dict：`attention_mask` 形狀 `(batch, n + L)`、dtype 同輸入；
# `position_ids` 形狀 `(batch, L)`、dtype `torch.long`。

# %% nbgrader={"grade": false, "grade_id": "mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prefix_mask_and_positions(attention_mask: torch.Tensor, num_virtual_tokens: int) -> dict:
    ### BEGIN SOLUTION
    batch = attention_mask.shape[0]
    ones = torch.ones(batch, num_virtual_tokens, dtype=attention_mask.dtype)
    # The k-th real token of a row (k = 0, 1, ...) sits at n + k, wherever the padding puts it.
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0) + num_virtual_tokens
    return {"attention_mask": torch.cat([ones, attention_mask], dim=1), "position_ids": positions}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-mask", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
out = prefix_mask_and_positions(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]), 3)
assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1]], \
    f"attention_mask 錯誤：{out['attention_mask'].tolist()}"
assert out["position_ids"][0, 2:].tolist() == [3, 4], "left padding 的列：第一個真實 token 的位置是 n"
assert out["position_ids"][1].tolist() == [3, 4, 5, 6], "沒有 padding 的列：位置從 n 開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 參數量的公式
#
# 每一層的 prefix 是 $n$ 個 key 與 $n$ 個 value，每個長 $d$（= heads × head_dim = hidden size），
# 所以 $L$ 層共有 $n \times 2 L d$ 個數。
#
# 論文 §4.3 發現直接訓練這些數字不穩定、效果差，於是 **reparameterise**：訓練一個較小的矩陣
# $P'_\theta \in \mathbb{R}^{n \times d}$ 與一個 MLP，$P_\theta = \text{MLP}_\theta(P'_\theta)$，
# MLP 是 `Linear(d, h) → Tanh → Linear(h, 2Ld)`（$h$ 是 `encoder_hidden_size`，兩層都有 bias）。
# 訓練完只留下 $P_\theta$，MLP 就可以丟掉（04-deploy 會做）。
#
# 實作 `prefix_parameter_count(num_layers, hidden_size, num_virtual_tokens, prefix_projection, encoder_hidden_size)`，
# 回傳 **訓練時** 可訓練參數的個數：
# - `prefix_projection=False`：只有 prefix 本身；
# - `prefix_projection=True`：$P'_\theta$ 加上 MLP 兩層的 weight 與 bias。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prefix_parameter_count(num_layers: int, hidden_size: int, num_virtual_tokens: int, prefix_projection: bool,
                           encoder_hidden_size: int) -> int:
    ### BEGIN SOLUTION
    prefix = 2 * num_layers * hidden_size  # one key and one value of hidden_size per layer, per virtual token
    if not prefix_projection:
        return num_virtual_tokens * prefix
    mlp = (hidden_size * encoder_hidden_size + encoder_hidden_size) + (encoder_hidden_size * prefix + prefix)
    return num_virtual_tokens * hidden_size + mlp
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
assert prefix_parameter_count(1, 4, 2, False, 8) == 2 * 2 * 1 * 4, "沒有 MLP：n × 2 × layers × hidden"
assert prefix_parameter_count(1, 4, 2, True, 8) == 2 * 4 + (4 * 8 + 8) + (8 * 8 + 8), "有 MLP：P' 加上兩層 Linear"

# %% [markdown] nbgrader={"grade": false, "grade_id": "summary-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 在這個 profile 的 GPT-2 上
#
# 下面用你的公式算出本作業的設定（02-train 會用一樣的 `NUM_VIRTUAL_TOKENS` 與 `ENCODER_HIDDEN`）訓練多少參數、
# 佔整個模型多少。MLP 讓訓練時的參數變多，但部署時只留 $n \times 2Ld$ 個數。

# %% nbgrader={"grade": false, "grade_id": "summary", "locked": true, "schema_version": 3, "solution": false, "task": false}
NUM_VIRTUAL_TOKENS = 10 if PROFILE == "tiny" else 20
ENCODER_HIDDEN = 64 if PROFILE == "tiny" else 512
n_layer, hidden = base.config.n_layer, base.config.n_embd
n_total = sum(p.numel() for p in base.parameters())
summary = {"total": n_total,
           "train": prefix_parameter_count(n_layer, hidden, NUM_VIRTUAL_TOKENS, True, ENCODER_HIDDEN),
           "deploy": prefix_parameter_count(n_layer, hidden, NUM_VIRTUAL_TOKENS, False, ENCODER_HIDDEN)}
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))
for stage in ("train", "deploy"):
    print(f"{stage}: {summary[stage]:,} of {n_total:,} parameters ({100 * summary[stage] / n_total:.3f}%)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：用 **你的** 函式處理 grader 抽的 mask 與模型大小。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def mask_and_positions_for(attention_mask: torch.Tensor, num_virtual_tokens: int) -> dict:
    return prefix_mask_and_positions(attention_mask, num_virtual_tokens)


def count_for(sizes: dict) -> int:
    return int(prefix_parameter_count(**sizes))
