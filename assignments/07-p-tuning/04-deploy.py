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
# # 07-4 部署：一個 base，多個 P-tuning adapter（Deploy）
#
# LoRA 的更新 $BA$ 可以加回權重；P-tuning **不能** merge：它不修正任何一層的權重，而是在輸入前面多接 $n$ 個向量，
# 沒有矩陣可以「加回去」。反過來，這是它部署上的優點：base model 完全不變，每個任務只存 $n \times d$ 個數加上
# 分類頭，同一個 base 可以同時服務很多任務，切換任務只是換一組 virtual token 與分類頭。
#
# 本 notebook：存檔（02 已做）→ 重新載入 → 把幾個 adapter 以不同名字載到 **同一個** base 上，依每個請求切換。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE, family="bert")

# %% [markdown] nbgrader={"grade": false, "grade_id": "serve-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 多個 adapter 共用一個 base
#
# - `load_many(adapters)`：`adapters` 是 `{名字: 資料夾}`。建 **一個** 新的 base（`load_model("bert", PROFILE)`），
#   第一個用 `PeftModel.from_pretrained(base, 資料夾, adapter_name=名字)`，其餘用
#   `model.load_adapter(資料夾, adapter_name=名字)`，回傳 `eval()` 的 PeftModel。
# - `serve(model, requests)`：`requests` 是 `[(名字, 句子), …]`，名字可以交錯出現。對每個請求先
#   `model.set_adapter(名字)`（換上那個 adapter 的 virtual token **與** 分類頭），再分類；回傳 logits，形狀
#   `(len(requests), num_labels)`，**順序與 requests 相同**，每一列都要等於「只載入那個 adapter、單獨分類」的結果。
#   tokenizer 的輸出要 `.to(model.device)`（`full` profile 的模型在 GPU 上）。

# %% nbgrader={"grade": false, "grade_id": "serve", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_many(adapters: dict) -> PeftModel:
    ### BEGIN SOLUTION
    (first, folder), *rest = adapters.items()
    model = PeftModel.from_pretrained(load_model("bert", PROFILE), str(folder), adapter_name=first)
    for name, path in rest:
        model.load_adapter(str(path), adapter_name=name)
    return model.eval()
    ### END SOLUTION


def serve(model: PeftModel, requests: list[tuple[str, str]]) -> torch.Tensor:
    ### BEGIN SOLUTION
    rows = []
    for name, text in requests:
        model.set_adapter(name)
        enc = tokenizer([text], truncation=True, max_length=64, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        rows.append(out.logits[0])
    return torch.stack(rows)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "serve-run-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 兩個任務
#
# 第二個「任務」是同一組 virtual token、分類頭的兩列對調（「這句話是負面的嗎？」）：同一句話送給兩個 adapter，
# 機率應該正好相反。真實的部署裡，它會是另一個任務訓練出來的 adapter。

# %% nbgrader={"grade": false, "grade_id": "serve-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
trained = ARTIFACTS / "p-tuning-adapter"
flipped = ARTIFACTS / "p-tuning-adapter-flipped"
flipped.mkdir(exist_ok=True)
(flipped / "adapter_config.json").write_text((trained / "adapter_config.json").read_text())
save_file({k: v.flip(0) if "classifier" in k else v for k, v in load_file(trained / "adapter_model.safetensors").items()},
          flipped / "adapter_model.safetensors")
server = load_many({"sentiment": trained, "negative": flipped})
requests = [("sentiment", "This movie is great."), ("negative", "This movie is great."),
            ("sentiment", "這本書令人失望。"), ("negative", "這本書令人失望。")]
logits = serve(server, requests)
print(logits.softmax(-1))
size = sum(p.stat().st_size for p in trained.iterdir())
base_size = sum(p.numel() * p.element_size() for p in load_model("bert", PROFILE).parameters())
print(f"one adapter on disk: {size:,} bytes; the base model: {base_size:,} bytes ({base_size / size:.0f}x)")
(ARTIFACTS / "served.json").write_text(json.dumps({"requests": requests, "logits": logits.tolist()}, ensure_ascii=False))

# %% nbgrader={"grade": true, "grade_id": "test-serve", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert tuple(logits.shape) == (4, 2), "serve 應回傳 (len(requests), num_labels) 的 logits"
assert torch.allclose(logits[0], logits[1].flip(0), atol=1e-5), "negative 的 logits 應是 sentiment 的反序"
assert set(server.peft_config) == {"sentiment", "negative"}, "兩個 adapter 都應載入同一個 model"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 自己做幾個 adapter（它抽的 prompt 與分類頭），交錯送出請求，和每個 adapter 單獨載入時的輸出比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def serve_requests(adapters: dict, requests: list) -> torch.Tensor:
    return serve(load_many(adapters), [tuple(r) for r in requests]).cpu()
