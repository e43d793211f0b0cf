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
# # 30-3 剪枝：magnitude 與 Wanda
#
# **Magnitude pruning** 把絕對值最小的權重設為 0。**Wanda**（Sun et al., 2023, *A Simple and Effective Pruning
# Approach for Large Language Models*, arXiv:2306.11695）的分數再乘上該輸入 feature 的啟動值大小：
#
# $$ S_{ij} = |W_{ij}| \cdot \lVert X_j \rVert_2 $$
#
# 並且 **每一個輸出列各自** 比較（per output row），不重新訓練、也不更新留下來的權重。
# 也可以套用硬體友善的 **n:m** 半結構稀疏（例如 2:4：每連續 4 個輸入權重留下分數最大的 2 個）。
# 最後用同一段保留文字，比較剪枝前後與各種壓縮方法的 perplexity。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import matplotlib
import torch
from safetensors.torch import load_file, save_file

from common_utils.compression import (calibration_ids, decoder_linears, heldout_ids, linear_inputs, loaded_bytes,
                                      perplexity, storage_bytes)
from common_utils.models import load_model
from common_utils.profiles import get_profile

matplotlib.use("Agg")
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
torch.manual_seed(0)
if PROFILE == "tiny":
    torch.set_num_threads(1)  # tiny matrices: a second thread costs more in synchronisation than it gives

# %% [markdown] nbgrader={"grade": false, "grade_id": "prune-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 分數與遮罩
#
# - `wanda_scores(W, act_norm)`：`act_norm[j]` = $\lVert X_j \rVert_2$（形狀 `(in_features,)`），回傳 $|W| \cdot \lVert X \rVert$。
# - `prune_rows(W, scores, sparsity)`：**每一列** 把分數最小的 `int(sparsity * in_features)` 個權重設為 0，
#   其餘權重 **原封不動**，回傳新的 `W`。
# - `magnitude_prune(W, sparsity)`：分數就是 $|W|$（同樣每列各自比較，作為 baseline）。
# - `wanda_prune(W, act_norm, sparsity)`：用 Wanda 分數的 `prune_rows`。
# - `nm_prune(W, scores, n=2, m=4)`：每列每連續 `m` 個權重，只留分數最大的 `n` 個。

# %% nbgrader={"grade": false, "grade_id": "prune", "locked": false, "schema_version": 3, "solution": true, "task": false}
def wanda_scores(W: torch.Tensor, act_norm: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return W.abs() * act_norm[None, :]
    ### END SOLUTION


def prune_rows(W: torch.Tensor, scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    k = int(sparsity * W.shape[1])
    pruned = torch.topk(scores, k, dim=1, largest=False).indices
    mask = torch.ones_like(W, dtype=torch.bool).scatter_(1, pruned, False)
    return W * mask
    ### END SOLUTION


def magnitude_prune(W: torch.Tensor, sparsity: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    return prune_rows(W, W.abs(), sparsity)
    ### END SOLUTION


def wanda_prune(W: torch.Tensor, act_norm: torch.Tensor, sparsity: float) -> torch.Tensor:
    ### BEGIN SOLUTION
    return prune_rows(W, wanda_scores(W, act_norm), sparsity)
    ### END SOLUTION


def nm_prune(W: torch.Tensor, scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    ### BEGIN SOLUTION
    groups = scores.reshape(W.shape[0], -1, m)
    keep = torch.topk(groups, n, dim=2).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, keep, True)
    return W * mask.reshape(W.shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-prune", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
W = torch.randn(6, 16)
norm = torch.rand(16) * 10
pruned = wanda_prune(W, norm, 0.5)
assert torch.all((pruned == 0).sum(dim=1) == 8), "每一列都應剛好剪掉一半"
assert torch.all((pruned == W) | (pruned == 0)), "留下的權重不應被改動"
assert torch.equal(wanda_scores(W, norm), W.abs() * norm), "Wanda 分數是 |W| · ‖X‖"
two_four = nm_prune(W, wanda_scores(W, norm))
assert torch.all((two_four.reshape(6, 4, 4) != 0).sum(dim=2) == 2), "2:4：每 4 個留 2 個"
print(f"magnitude and Wanda masks agree on {((magnitude_prune(W, 0.5) != 0) == (pruned != 0)).float().mean():.0%}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "model-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 剪枝 tiny Llama
#
# 寫 `activation_norms(inputs)`：`inputs` 是 `{層名: (tokens, in_features)}`，回傳每層每個輸入 feature 的 $\lVert X_j \rVert_2$。
# 下面鎖定的 cell 用校準文字收集輸入，對每個 decoder 線性層做 50% magnitude、50% Wanda 與 2:4 Wanda，存成
# `artifacts/pruned-{magnitude,wanda,wanda-2of4}.safetensors`；grader 會把它們載入自己建的模型，逐列檢查稀疏度、
# 確認留下的權重沒被改，並自己重算保留文字上的 perplexity。

# %% nbgrader={"grade": false, "grade_id": "act-norms", "locked": false, "schema_version": 3, "solution": true, "task": false}
def activation_norms(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ### BEGIN SOLUTION
    return {name: X.float().norm(dim=0) for name, X in inputs.items()}
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "prune-model", "locked": true, "schema_version": 3, "solution": false, "task": false}
SPARSITY = 0.5
model = load_model("llama", PROFILE)
norms = activation_norms(linear_inputs(model, calibration_ids(PROFILE)))
METHODS = {
    "magnitude": lambda W, name: magnitude_prune(W, SPARSITY),
    "wanda": lambda W, name: wanda_prune(W, norms[name], SPARSITY),
    "wanda-2of4": lambda W, name: nm_prune(W, wanda_scores(W, norms[name]), 2, 4),
}
for method, prune in METHODS.items():
    weights = {f"{name}.weight": prune(layer.weight.detach().float(), name).contiguous()
               for name, layer in decoder_linears(model).items()}
    save_file(weights, str(ARTIFACTS / f"pruned-{method}.safetensors"))
print("saved", ", ".join(f"pruned-{m}" for m in METHODS))

# %% nbgrader={"grade": true, "grade_id": "test-prune-model", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
for method in METHODS:
    assert (ARTIFACTS / f"pruned-{method}.safetensors").is_file(), f"缺少 artifacts/pruned-{method}.safetensors"

# %% [markdown] nbgrader={"grade": false, "grade_id": "effect-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 效果：大小與 perplexity
#
# 下面的 cell 把每種方法的權重載回同一個模型，在保留文字上量 perplexity，並估計 decoder 線性層的儲存大小
# （全精度 fp32；GPTQ 4-bit 加上每組一個 fp16 scale 與 4-bit zero；50% 非結構剪枝存成 fp16 值加 bitmask；
# 2:4 存一半的 fp16 值加每個值 2-bit 的位置）。NF4 那一列用 bitsandbytes 載入（每 64 個值一個 absmax）。
# `loaded_bytes` 是載入後模型參數與 buffer 實際佔的記憶體：GPTQ 與剪枝在這裡都還原成 fp32，所以沒有變小——
# 要省記憶體，得有直接吃壓縮格式的 kernel（bitsandbytes 的 NF4 就是）。
# 請寫 `effect_table(rows)`：把 `rows`（每個方法一個 dict）依 perplexity 由小到大排序後存成
# `artifacts/effect.json`，並畫出「大小 vs. perplexity」的散布圖存成 `artifacts/effect.png`。grader 會自己重算每一列。

# %% nbgrader={"grade": false, "grade_id": "effect-table", "locked": false, "schema_version": 3, "solution": true, "task": false}
def effect_table(rows: list[dict]) -> list[dict]:
    ### BEGIN SOLUTION
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["perplexity"])
    (ARTIFACTS / "effect.json").write_text(json.dumps(rows, indent=2))
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.scatter(r["size_bytes"] / 2**10, r["perplexity"])
        ax.annotate(r["method"], (r["size_bytes"] / 2**10, r["perplexity"]))
    ax.set_xlabel("decoder linear weights (KiB)")
    ax.set_ylabel("held-out perplexity")
    fig.tight_layout()
    fig.savefig(ARTIFACTS / "effect.png", dpi=100)
    plt.close(fig)
    return rows
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "effect", "locked": true, "schema_version": 3, "solution": false, "task": false}
held = heldout_ids(PROFILE)
rows = [{"method": "base", "perplexity": perplexity(model, held), "size_bytes": storage_bytes(model, "fp32"),
         "loaded_bytes": loaded_bytes(model)}]
candidates = {"gptq-4bit": "gptq-weights", **{m: f"pruned-{m}" for m in METHODS}}
for method, stem in candidates.items():
    path = ARTIFACTS / f"{stem}.safetensors"
    if path.is_file():
        fresh = load_model("llama", PROFILE)
        fresh.load_state_dict(load_file(str(path)), strict=False)
        rows.append({"method": method, "perplexity": perplexity(fresh, held), "size_bytes": storage_bytes(fresh, method),
                     "loaded_bytes": loaded_bytes(fresh)})
nf4 = load_model("llama", PROFILE, quantization="nf4")
rows.append({"method": "nf4", "perplexity": perplexity(nf4, held), "size_bytes": storage_bytes(model, "nf4"),
             "loaded_bytes": loaded_bytes(nf4)})
for row in effect_table(rows):
    print(f"{row['method']:>11}: perplexity {row['perplexity']:9.2f}   stored {row['size_bytes'] / 2**10:7.1f} KiB"
          f"   in memory {row['loaded_bytes'] / 2**10:7.1f} KiB")

# %% nbgrader={"grade": true, "grade_id": "test-effect", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "effect.json").is_file() and (ARTIFACTS / "effect.png").is_file(), "應存下 effect.json 與 effect.png"
