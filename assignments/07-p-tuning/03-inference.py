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
# # 07-3 推論（Inference）
#
# `artifacts/p-tuning-adapter/` 裡沒有 prompt encoder：peft 存的是 encoder 訓練後的 **輸出**（$n \times d$ 的
# `prompt_embeddings`）與分類頭。`PeftModel.from_pretrained` 以推論模式載入時，把這 $n$ 個向量放進一個普通的
# `nn.Embedding`：推論時 P-tuning 和 prompt tuning 一模一樣，encoder 只是訓練時幫助最佳化的工具（Liu et al. §3.2）。
#
# 分類時 peft 把 virtual token 接在輸入前面，attention mask 前面補 $n$ 個 1；你只要像平常一樣傳入
# `input_ids` 與 `attention_mask`。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE, family="bert")

# %% [markdown] nbgrader={"grade": false, "grade_id": "load-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 載回 adapter 並分類
#
# - `load_adapted(folder)`：`PeftModel.from_pretrained(load_model("bert", PROFILE), folder)`，切到 `eval()` 後回傳。
# - `classify(model, texts)`：`tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")`，
#   傳入 `input_ids` 與 `attention_mask`（padding 的位置不能被看到），在 `torch.no_grad()` 下回傳 logits，
#   形狀 `(len(texts), num_labels)`。tokenizer 的輸出要放到模型所在的裝置（`.to(model.device)`）：`full` profile
#   在 GPU runner 上，模型在 GPU。

# %% nbgrader={"grade": false, "grade_id": "load", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_adapted(folder) -> PeftModel:
    ### BEGIN SOLUTION
    return PeftModel.from_pretrained(load_model("bert", PROFILE), str(folder)).eval()
    ### END SOLUTION


def classify(model, texts: list[str]) -> torch.Tensor:
    ### BEGIN SOLUTION
    enc = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt").to(model.device)
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "run-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 學到了多少？
#
# 下面的 cell 在 held-out 句子（訓練時沒看過）上比較三個模型：沒有 adapter 的 base（分類頭是隨機的）、
# 剛建立還沒訓練的 P-tuning、以及你訓練好的 adapter。數字都是算出來的。

# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
from peft import PeftConfig, get_peft_model

held = load_course_dataset("sentiment", PROFILE, split="held_out")
texts, labels = [r["text"] for r in held], torch.tensor([r["label"] for r in held])
fresh_config = PeftConfig.from_pretrained(str(ARTIFACTS / "p-tuning-adapter"))
fresh_config.inference_mode = False  # a trainable encoder, as 02-train started from
torch.manual_seed(0)
untrained = get_peft_model(load_model("bert", PROFILE), fresh_config)
figures = {}
for name, candidate in {"base": load_model("bert", PROFILE), "untrained": untrained,
                        "trained": load_adapted(ARTIFACTS / "p-tuning-adapter")}.items():
    logits = classify(candidate.eval(), texts).float().cpu()
    figures[name] = {"loss": float(torch.nn.functional.cross_entropy(logits, labels)),
                     "accuracy": float((logits.argmax(-1) == labels).float().mean())}
    print(f"{name:9s} held-out loss {figures[name]['loss']:.3f}, accuracy {figures[name]['accuracy']:.2f} ({len(held)} rows)")
(ARTIFACTS / "inference.json").write_text(json.dumps(figures, indent=2))

# %% nbgrader={"grade": true, "grade_id": "test-inference", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
_model = load_adapted(ARTIFACTS / "p-tuning-adapter")
_logits = classify(_model, texts[:4])
assert tuple(_logits.shape) == (4, 2), "logits 形狀應為 (len(texts), num_labels)"
for _i in range(4):
    assert torch.allclose(_logits[_i], classify(_model, texts[_i:_i + 1])[0], atol=1e-5), \
        "一句話單獨分類與放在有 padding 的 batch 裡分類，結果應相同：attention_mask 有傳入嗎？"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 用它自己做的 adapter（它抽的 prompt 與分類頭）與句子呼叫你的函式，和它自己載入的結果比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def logits_on(folder: str, texts: list[str]) -> torch.Tensor:
    return classify(load_adapted(folder), list(texts)).cpu()
