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
# # 30-2 GPTQ
#
# **Round-to-nearest（RTN）** 把每個權重各自捨入到最近的格點，不管誤差對輸出的影響。
# **GPTQ**（Frantar et al., 2022, *GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
# Transformers*, arXiv:2210.17323）一次量化一個輸入 column，並把這個 column 的捨入誤差，依照校準資料算出的
# Hessian $H = \frac{2}{n} X^\top X$，分攤到 **還沒量化** 的 column 上，讓層的輸出 $XW^\top$ 變化最小：
#
# $$ \delta = \frac{w_i - q_i}{[H^{-1}]_{ii}}, \qquad W_{:, j} \leftarrow W_{:, j} - \delta\, [H^{-1}]_{ij} \quad (j > i) $$
#
# 其中 $H^{-1}$ 用 Cholesky 分解的上三角因子（論文的 "Cholesky reformulation"）。選項：
# - `group_size`：每 `group_size` 個 column 重新算一次 scale / zero（-1 = 整列一組）；
# - `act_order`：先量化 $H$ 對角線大的 column（輸入能量大的 column 先量化，誤差留給不重要的 column）。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from common_utils.compression import calibration_ids, decoder_linears, heldout_ids, linear_inputs, perplexity
from common_utils.models import load_model
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
torch.manual_seed(0)
if PROFILE == "tiny":
    torch.set_num_threads(1)  # tiny matrices: a second thread costs more in synchronisation than it gives

# %% [markdown] nbgrader={"grade": false, "grade_id": "rtn-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 格點與 round-to-nearest
#
# 非對稱的 `bits`-bit 格點（與 GPTQ 的參考實作相同）：每一列
# $lo = \min(\min_j w_j, 0)$、$hi = \max(\max_j w_j, 0)$，`maxq = 2**bits - 1`，
# `scale = (hi - lo) / maxq`，`zero = round(-lo / scale)`；量化再還原：
# `scale * (clamp(round(w / scale) + zero, 0, maxq) - zero)`。
#
# `find_params(w, bits)` 回傳每列的 `(scale, zero)`，形狀都是 `(rows, 1)`（整列都是 0 時 scale 用 1）。
# `rtn_quantize(W, bits, group_size)` 每 `group_size` 個 column 一組各自 `find_params`，回傳還原後的權重。

# %% nbgrader={"grade": false, "grade_id": "rtn", "locked": false, "schema_version": 3, "solution": true, "task": false}
def find_params(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    ### BEGIN SOLUTION
    maxq = 2 ** bits - 1
    lo = w.amin(dim=1, keepdim=True).clamp(max=0)
    hi = w.amax(dim=1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / maxq
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return scale, torch.round(-lo / scale)
    ### END SOLUTION


def quantize(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantize to the grid and back (the dequantized value)."""
    q = torch.clamp(torch.round(w / scale) + zero, 0, 2 ** bits - 1)
    return scale * (q - zero)


def rtn_quantize(W: torch.Tensor, bits: int = 4, group_size: int = -1) -> torch.Tensor:
    ### BEGIN SOLUTION
    step = W.shape[1] if group_size == -1 else group_size
    out = torch.empty_like(W)
    for start in range(0, W.shape[1], step):
        block = W[:, start:start + step]
        out[:, start:start + step] = quantize(block, *find_params(block, bits), bits)
    return out
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "gptq-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. Hessian 與 GPTQ
#
# `hessian(X)`：`X` 是 `(tokens, in_features)` 的校準輸入，回傳 $\frac{2}{n} X^\top X$（`in_features × in_features`）。
#
# `gptq_quantize(W, H, bits, group_size=-1, act_order=False, percdamp=0.01)`，回傳還原後的量化權重（與 `W` 同形狀）：
# 1. $H_{ii} = 0$ 的 column（從沒被用到的輸入）：設 $H_{ii} = 1$、該 column 的權重設為 0；
# 2. `act_order`：依 $H$ 的對角線 **由大到小** 重排 `W` 的 column 與 `H` 的列、行（最後要排回原順序）；
# 3. 阻尼：$H \mathrel{+}= \text{percdamp} \cdot \mathrm{mean}(\mathrm{diag}\,H) \cdot I$；
# 4. `Hinv = cholesky(cholesky_inverse(cholesky(H)), upper=True)`；
# 5. 依序處理第 $i$ 個 column（重排後的順序）：`group_size > 0` 且 `i % group_size == 0` 時，用 **目前（已更新的）**
#    `W[:, i:i+group_size]` 重新 `find_params`；`group_size == -1` 時一開始用整個 `W` 算一次。
#    量化 $w_i$ 得 $q_i$，`err = (w_i - q_i) / Hinv[i, i]`，`W[:, i:] -= err ⊗ Hinv[i, i:]`。

# %% nbgrader={"grade": false, "grade_id": "gptq", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hessian(X: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    X = X.double()
    return (2 / X.shape[0] * X.T @ X).float()
    ### END SOLUTION


def gptq_quantize(W: torch.Tensor, H: torch.Tensor, bits: int = 4, group_size: int = -1, act_order: bool = False,
                  percdamp: float = 0.01) -> torch.Tensor:
    ### BEGIN SOLUTION
    W, H = W.clone().float(), H.clone().float()
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(cols)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    if group_size == -1:
        scale, zero = find_params(W, bits)
    for i in range(cols):
        if group_size > 0 and i % group_size == 0:
            scale, zero = find_params(W[:, i:i + group_size], bits)
        w = W[:, i:i + 1]
        q = quantize(w, scale, zero, bits)
        Q[:, i:i + 1] = q
        err = (w - q) / Hinv[i, i]
        W[:, i:] -= err @ Hinv[i:i + 1, i:]
    if act_order:
        Q = Q[:, torch.argsort(perm)]
    return Q
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def output_error(W: torch.Tensor, Q: torch.Tensor, X: torch.Tensor) -> float:
    """Relative squared error of the layer's output: ||X W^T - X Q^T||^2 / ||X W^T||^2."""
    return float((X @ (W - Q).T).pow(2).sum() / (X @ W.T).pow(2).sum())


def gptq_from_activations(W, X, bits: int = 4, group_size: int = -1, act_order: bool = False):
    """Your GPTQ on W, calibrated on X (used by the grader)."""
    return gptq_quantize(W, hessian(X), bits, group_size, act_order)


# %% nbgrader={"grade": true, "grade_id": "test-gptq", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false}
# Correlated inputs with a decaying spectrum, as a real layer's inputs are.
mix = torch.randn(32, 32) @ torch.diag(torch.logspace(-2, 0.5, 32)) @ torch.randn(32, 32) / 32 ** 0.5
X_calib, X_held = torch.randn(512, 32) @ mix, torch.randn(512, 32) @ mix
W = torch.randn(16, 32)
assert torch.allclose(hessian(X_calib), 2 / 512 * X_calib.T @ X_calib, rtol=1e-4, atol=1e-4), "H 應為 2/n · XᵀX"
for group_size, act_order in ((-1, False), (8, False), (8, True)):
    rtn = output_error(W, rtn_quantize(W, 4, group_size), X_held)
    gptq = output_error(W, gptq_from_activations(W, X_calib, 4, group_size, act_order), X_held)
    print(f"group_size={group_size:3d} act_order={act_order!s:5}: RTN {rtn:.5f}  GPTQ {gptq:.5f}")
    assert gptq <= rtn, "GPTQ 在保留資料上的輸出誤差不應大於 RTN"

# %% [markdown] nbgrader={"grade": false, "grade_id": "model-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 量化整個 tiny Llama
#
# 下面的 cell 用校準文字收集每個 decoder 線性層的輸入（全精度模型上一次收集；原論文是逐層、用已量化的前幾層的輸出，
# 這裡簡化），對每一層呼叫你的 `gptq_quantize`，把量化後的權重存成 `artifacts/gptq-weights.safetensors`。
# grader 會自己用 **保留資料** 收集每層的輸入，逐層比較你的權重、RTN 與參考解答的誤差，並確認權重真的落在 4-bit 格點上。

# %% nbgrader={"grade": false, "grade_id": "quantize-model", "locked": true, "schema_version": 3, "solution": false, "task": false}
BITS, GROUP_SIZE, ACT_ORDER = 4, (32 if PROFILE == "tiny" else 128), True
model = load_model("llama", PROFILE)
inputs = linear_inputs(model, calibration_ids(PROFILE))
quantized = {}
for name, layer in decoder_linears(model).items():
    quantized[f"{name}.weight"] = gptq_quantize(layer.weight.detach().float(), hessian(inputs[name]), BITS, GROUP_SIZE,
                                                ACT_ORDER).contiguous()
save_file(quantized, str(ARTIFACTS / "gptq-weights.safetensors"))
(ARTIFACTS / "gptq-config.json").write_text(json.dumps({"bits": BITS, "group_size": GROUP_SIZE, "act_order": ACT_ORDER}))

base_ppl = perplexity(model, heldout_ids(PROFILE))
model.load_state_dict(quantized, strict=False)
gptq_ppl = perplexity(model, heldout_ids(PROFILE))
print(f"held-out perplexity: base {base_ppl:.2f}, GPTQ {BITS}-bit {gptq_ppl:.2f}")

# %% nbgrader={"grade": true, "grade_id": "test-quantize-model", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "gptq-weights.safetensors").is_file(), "量化後的權重應存成 artifacts/gptq-weights.safetensors"
