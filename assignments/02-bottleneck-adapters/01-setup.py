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
# # 02-1 環境與參數量（Setup）
#
# **Bottleneck adapter**（Houlsby et al., 2019, *Parameter-Efficient Transfer Learning for NLP*）在每個 Transformer
# block 裡插入小小的瓶頸網路：先把 hidden size $d$ 投影到 $m \ll d$（down），過非線性，再投影回 $d$（up），
# 並加上 residual：$h \leftarrow h + W_{up}\,\sigma(W_{down} h + b_{down}) + b_{up}$。
# **Houlsby** 在 attention 輸出與 FFN 輸出後各放一個；**Pfeiffer**（Pfeiffer et al., 2020, *AdapterFusion*）
# 發現只放在 FFN 之後幾乎一樣好，參數少一半。
#
# 這個作業分四個 notebook（共用 `artifacts/`）：
# 1. **01-setup**（本 notebook）：用公式算出兩種放法各訓練多少參數；
# 2. **02-train**：從零寫 `Adapter`，和課程的 `BottleneckAdapter` 比對，在 paraphrase（句子對是否同義）任務上訓練；
# 3. **03-inference**：把 adapter 載回新的 base model 分類；
# 4. **04-merge-and-deploy**：adapter 有非線性，**不能** merge 回權重；改成一個 base 服務多組 adapter。
#
# peft 沒有 bottleneck adapter（`adapters` 套件需要舊版 transformers），所以課程在 `common_utils.adapters.bottleneck` 自己寫了一份。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
from common_utils.datasets import load_course_dataset
from common_utils.models import load_model
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
rows = load_course_dataset("paraphrase", PROFILE, split="train")
print(f"profile={PROFILE} | {len(rows):,} sentence pairs | e.g. {rows[0]}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 參數量的公式
#
# 一個 adapter（hidden size $d$、瓶頸寬度 $m$）有 down（$d \times m$ 權重 + $m$ bias）與 up（$m \times d$ 權重 + $d$ bias）。
# 實作 `adapter_parameter_count(hidden, bottleneck, num_layers, placement)`，回傳整個模型裡 **所有 adapter** 的參數個數：
# - `placement="houlsby"`：每個 block 兩個 adapter（attention 後、FFN 後）；
# - `placement="pfeiffer"`：每個 block 一個（FFN 後）。
#
# 用公式算，不要建模型：grader 會拿你的公式和它在模型上實際數出來的個數比對。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def adapter_parameter_count(hidden: int, bottleneck: int, num_layers: int, placement: str) -> int:
    ### BEGIN SOLUTION
    per_adapter = 2 * hidden * bottleneck + bottleneck + hidden
    per_block = {"houlsby": 2, "pfeiffer": 1}[placement]
    return num_layers * per_block * per_adapter
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert adapter_parameter_count(8, 2, 1, "pfeiffer") == 2 * 8 * 2 + 2 + 8, "一個 adapter = 2·d·m + m + d"
assert adapter_parameter_count(8, 2, 3, "houlsby") == 2 * adapter_parameter_count(8, 2, 3, "pfeiffer"), \
    "Houlsby 每個 block 兩個 adapter"

# %% [markdown] nbgrader={"grade": false, "grade_id": "fraction-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 可訓練比例（算出來，不是抄來的）
#
# 下面的 cell 用你的公式算出 tiny/full BERT 上兩種放法的 adapter 參數量，加上分類頭（新任務的 head 一定要訓練），
# 再和課程的 `add_bottleneck_adapters` 實際數出來的結果並列。

# %% nbgrader={"grade": false, "grade_id": "fraction", "locked": true, "schema_version": 3, "solution": false, "task": false}
BOTTLENECK = 16
summary = {}
for placement in ("houlsby", "pfeiffer"):
    model = add_bottleneck_adapters(load_model("bert", PROFILE), BottleneckConfig(bottleneck_size=BOTTLENECK, placement=placement))
    cfg = model.config
    formula = adapter_parameter_count(cfg.hidden_size, BOTTLENECK, cfg.num_hidden_layers, placement)
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith("classifier."))
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    summary[placement] = {"formula_adapters": formula, "head": head, "counted_trainable": counted, "total": total,
                          "fraction": counted / total}
    print(f"{placement:9s} adapters {formula:,} + head {head:,} = {formula + head:,} | counted {counted:,} "
          f"of {total:,} ({100 * counted / total:.2f}%)")
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def count_on(hidden: int, bottleneck: int, num_layers: int) -> dict:
    """Your formula for both placements, on sizes the grader draws."""
    return {p: int(adapter_parameter_count(hidden, bottleneck, num_layers, p)) for p in ("houlsby", "pfeiffer")}
