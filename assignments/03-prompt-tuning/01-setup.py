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
# # 03-1 環境與資料準備（Setup）
#
# **Prompt tuning**（Lester et al., 2021, *The Power of Scale for Parameter-Efficient Prompt Tuning*,
# arXiv:2104.08691）凍結整個語言模型，只在輸入的 embedding 序列 **前面** 接上 $n$ 個可訓練的向量
# （soft prompt，又稱 virtual tokens）。可訓練參數只有 $n \times d_{model}$ 個。
#
# 這個作業分四個 notebook，請依序執行，它們共用同一個資料夾裡的 `artifacts/`：
# 1. **01-setup**（本 notebook）：soft prompt 接在前面之後，attention mask 與 labels 要怎麼延長；
#    用詞彙表裡真實 token 的 embedding 初始化 soft prompt。
# 2. **02-train**：從零寫 `SoftPrompt`，再用 peft 的 `PromptTuningConfig` 訓練，兩者比對。
# 3. **03-inference**：把 soft prompt 載回新的 base model 生成文字。
# 4. **04-deploy**：prompt tuning 無法合併進權重（它改的是輸入，不是權重），所以改為部署：
#    一個 base model 同時服務多個 soft prompt。
#
# 預設 `COURSE_PROFILE=tiny`：模型由設定檔與固定種子建立，CPU 上幾分鐘內跑完。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import math
from pathlib import Path

import torch

from common_utils.models import load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
IGNORE_INDEX = -100
print(f"profile={PROFILE} | vocab={len(tokenizer):,}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "extend-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 延長 attention mask 與 labels
#
# 模型實際看到的序列是 `[p_1 … p_n, x_1 … x_L]`：長度變成 $n + L$。所以
# - `attention_mask` 前面要補 $n$ 個 **1**：每個真實 token 都要能 attend 到 soft prompt
#   （補 0 的話，soft prompt 等於不存在，訓練不會有任何效果）；
# - `labels` 前面要補 $n$ 個 **-100**：virtual token 不是文字，沒有「正確答案」可以預測，
#   不能算進 loss。
#
# 實作 `extend_for_prompt(attention_mask, labels, num_virtual_tokens)`，輸入是形狀 `(batch, L)`
# 的整數 tensor（可能有 padding），回傳 dict，`attention_mask` 與 `labels` 形狀都是 `(batch, n + L)`，
# dtype 與輸入相同。peft 的 `PeftModelForCausalLM` 在內部做的就是這件事。

# %% nbgrader={"grade": false, "grade_id": "extend", "locked": false, "schema_version": 3, "solution": true, "task": false}
def extend_for_prompt(attention_mask: torch.Tensor, labels: torch.Tensor, num_virtual_tokens: int) -> dict:
    ### BEGIN SOLUTION
    batch = attention_mask.shape[0]
    ones = torch.ones(batch, num_virtual_tokens, dtype=attention_mask.dtype)
    ignore = torch.full((batch, num_virtual_tokens), IGNORE_INDEX, dtype=labels.dtype)
    return {"attention_mask": torch.cat([ones, attention_mask], dim=1), "labels": torch.cat([ignore, labels], dim=1)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-extend", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
out = extend_for_prompt(torch.tensor([[1, 1, 0]]), torch.tensor([[-100, 7, -100]]), 2)
assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 0]], f"attention_mask 錯誤：{out['attention_mask'].tolist()}"
assert out["labels"].tolist() == [[-100, -100, -100, 7, -100]], f"labels 錯誤：{out['labels'].tolist()}"

# %% [markdown] nbgrader={"grade": false, "grade_id": "init-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 從詞彙表的 embedding 初始化
#
# Lester et al. 的實驗（論文 §3.2、Figure 3(b)）顯示：soft prompt 用 **真實 token 的 embedding**
# 初始化（例如類別標籤的文字、或從常用詞彙中抽樣），比隨機初始化穩定得多，在小模型上差距尤其大。
# 隨機向量落在 embedding 空間裡模型從沒見過的位置。
#
# 實作 `prompt_init_ids(tokenizer, text, num_virtual_tokens)`，規則與 peft 的
# `prompt_tuning_init="TEXT"` 相同：
# - 用 `tokenizer(text, add_special_tokens=False)["input_ids"]` 取得 token id（不要 BOS 等特殊 token：
#   它們不是有意義的文字；peft 直接呼叫 `tokenizer(text)`，tiny tokenizer 不加特殊 token，結果相同）；
# - 太長就只留前 `num_virtual_tokens` 個；太短就把整串 **重複** 接起來，再截到 `num_virtual_tokens` 個。
#
# 回傳長度剛好 `num_virtual_tokens` 的 Python `list[int]`。

# %% nbgrader={"grade": false, "grade_id": "init-ids", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prompt_init_ids(tokenizer, text: str, num_virtual_tokens: int) -> list[int]:
    ### BEGIN SOLUTION
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    repeats = math.ceil(num_virtual_tokens / len(ids))
    return (ids * repeats)[:num_virtual_tokens]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-init-ids", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
ids = prompt_init_ids(tokenizer, "Answer the instruction.", 12)
assert len(ids) == 12 and all(isinstance(i, int) for i in ids), "應回傳 12 個整數"
assert ids[: len(tokenizer("Answer", add_special_tokens=False)["input_ids"])] == \
    tokenizer("Answer", add_special_tokens=False)["input_ids"], "應從文字的第一個 token 開始"

# %% nbgrader={"grade": false, "grade_id": "summary", "locked": true, "schema_version": 3, "solution": false, "task": false}
INIT_TEXT = "Follow the instruction and write the response."
summary = {"init_text": INIT_TEXT, "init_ids": prompt_init_ids(tokenizer, INIT_TEXT, 10),
           "init_tokens": tokenizer.convert_ids_to_tokens(prompt_init_ids(tokenizer, INIT_TEXT, 10))}
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
print(summary)

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：它用 **你的** `prompt_init_ids` 處理 grader 抽的文字與長度。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def init_ids_for(text: str, num_virtual_tokens: int) -> list[int]:
    return [int(i) for i in prompt_init_ids(tokenizer, text, num_virtual_tokens)]
