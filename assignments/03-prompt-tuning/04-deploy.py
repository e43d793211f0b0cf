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
# # 03-4 部署：一個 base model，多個 soft prompt（Deploy）
#
# LoRA 可以把 $BA$ 合併回權重；prompt tuning **不能**：soft prompt 不是任何一層權重的修正量，而是
# 接在輸入前面的額外向量，沒有可以「加回去」的矩陣。反過來，這正是它部署上的優點（Lester et al. §1、
# Figure 2）：base model 完全不變，每個任務只存一段 $n \times d$ 的 prompt，同一個 base 可以同時服務
# 許多任務，切換任務只是換一段 prompt。
#
# 本 notebook：把幾個 soft prompt 以不同名字載到 **同一個** base model 上，依照每個請求的名字切換。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE)

# %% [markdown] nbgrader={"grade": false, "grade_id": "serve-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 多個 adapter 共用一個 base
#
# - `load_many(adapters)`：`adapters` 是 `{名字: 資料夾}`。建 **一個** 新的 base model
#   （`load_model("llama", PROFILE)`），第一個用 `PeftModel.from_pretrained(..., adapter_name=名字)`，
#   其餘用 `model.load_adapter(資料夾, adapter_name=名字)`，回傳 `eval()` 的 PeftModel。
# - `serve(model, requests, max_new_tokens)`：`requests` 是 `[(名字, prompt), …]`，名字可以交錯出現。
#   每個請求先 `model.set_adapter(名字)` 再 greedy decoding（`do_sample=False`，輸入放到 `model.device`），只 decode 新 token、
#   `skip_special_tokens=True`；依請求的順序回傳字串 list。

# %% nbgrader={"grade": false, "grade_id": "serve", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_many(adapters: dict[str, str]) -> PeftModel:
    ### BEGIN SOLUTION
    (first, folder), *rest = adapters.items()
    model = PeftModel.from_pretrained(load_model("llama", PROFILE), str(folder), adapter_name=first)
    for name, path in rest:
        model.load_adapter(str(path), adapter_name=name)
    return model.eval()
    ### END SOLUTION


def serve(model: PeftModel, requests: list[tuple[str, str]], max_new_tokens: int = 12) -> list[str]:
    ### BEGIN SOLUTION
    texts = []
    for name, prompt in requests:
        model.set_adapter(name)
        inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return texts
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "serve-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
# A second "task": the same soft prompt, scaled, stands in for a prompt trained on another task.
from safetensors.torch import load_file, save_file

second = ARTIFACTS / "prompt-adapter-2"
second.mkdir(exist_ok=True)
(second / "adapter_config.json").write_text((ARTIFACTS / "prompt-adapter" / "adapter_config.json").read_text())
save_file({k: 1.5 * v for k, v in load_file(ARTIFACTS / "prompt-adapter" / "adapter_model.safetensors").items()},
          second / "adapter_model.safetensors")
server = load_many({"instructions": ARTIFACTS / "prompt-adapter", "scaled": second})
prompt = "### Instruction:\nWhat is the capital of France?\n\n### Response:\n"
answers = serve(server, [("instructions", prompt), ("scaled", prompt), ("instructions", prompt)])
(ARTIFACTS / "served.json").write_text(json.dumps(answers, ensure_ascii=False, indent=2))
size = sum(p.stat().st_size for p in (ARTIFACTS / "prompt-adapter").iterdir())
base_size = sum(p.numel() * p.element_size() for p in load_model("llama", PROFILE).parameters())
print(answers)
print(f"one soft prompt on disk: {size:,} bytes; the base model: {base_size:,} bytes ({base_size / size:.0f}x)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：它自己做幾個 soft prompt，交錯送出請求，再和每個 soft prompt 單獨載入時的
# 輸出比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def serve_requests(adapters: dict[str, str], requests: list[list[str]], max_new_tokens: int = 8) -> list[str]:
    return serve(load_many(adapters), [tuple(r) for r in requests], max_new_tokens)


# %% nbgrader={"grade": true, "grade_id": "test-serve", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert len(answers) == 3 and answers[0] == answers[2], "同一個 adapter、同一個 prompt 應得到相同輸出"
assert set(server.peft_config) == {"instructions", "scaled"}, "兩個 adapter 都應載入同一個 model"
