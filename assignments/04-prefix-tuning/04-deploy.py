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
# # 04-4 部署：拿掉 MLP，一個 base model 服務多個 prefix（Deploy）
#
# LoRA 可以把 $BA$ 合併回權重；prefix tuning **不能**：prefix 是每一層 attention 多出來的 key/value，
# 不是任何權重矩陣的修正量，沒有矩陣可以「加回去」。反過來，這正是它部署上的優點（Li & Liang §1、Figure 1）：
# base model 完全不變，每個任務只存一段 prefix，同一個 base 可以同時服務許多任務。
#
# 本 notebook：(1) 訓練用的 MLP 在部署時不需要（論文 §4.3：訓練完只留 $P_\theta$），自己把它拿掉，
# 和 peft 存下的 prefix 比對；(2) 把幾個 prefix 以不同名字載到 **同一個** base model 上，依請求切換。

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
tokenizer = load_tokenizer(PROFILE, "gpt2")

# %% [markdown] nbgrader={"grade": false, "grade_id": "remove-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 拿掉 reparameterisation MLP
#
# 訓練時的 encoder 有 $P'$（`embedding.weight`，形狀 $n \times d$）與 MLP
# （`transform.0` = `Linear(d, h)`、Tanh、`transform.2` = `Linear(h, 2Ld)`）。部署只需要它的輸出
# $P = \text{MLP}(P')$，形狀 $n \times 2Ld$：之後每次 forward 都直接用 $P$，MLP 不必再算、也不必存。
#
# 實作 `deployable_prefix(state)`：`state` 是訓練時 encoder 的 `state_dict`（上面五個 tensor），回傳
# **沒有 MLP** 的 encoder 的 `state_dict`：`{"embedding.weight": P}`。請自己寫出 $W_2 \tanh(W_1 x + b_1) + b_2$
# （`nn.Linear` 的 weight 形狀是 `(out, in)`）。

# %% nbgrader={"grade": false, "grade_id": "remove-mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def deployable_prefix(state: dict) -> dict:
    ### BEGIN SOLUTION
    hidden = torch.tanh(state["embedding.weight"] @ state["transform.0.weight"].T + state["transform.0.bias"])
    return {"embedding.weight": hidden @ state["transform.2.weight"].T + state["transform.2.bias"]}
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "remove-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
# peft saved the prefix of the trained MLP as the adapter's only tensor; compute it again from the training state.
train_state = load_file(ARTIFACTS / "prefix-train-state" / "encoder.safetensors")
saved = load_file(ARTIFACTS / "prefix-adapter" / "adapter_model.safetensors")
mine = deployable_prefix(train_state)["embedding.weight"]
print("saved adapter:", {k: tuple(v.shape) for k, v in saved.items()})
print("training state:", {k: tuple(v.shape) for k, v in train_state.items()})
print("your prefix:", tuple(mine.shape), "| equal to the saved one:",
      torch.allclose(mine, next(iter(saved.values())), atol=1e-5))

# %% nbgrader={"grade": true, "grade_id": "test-remove", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
_state = {"embedding.weight": torch.zeros(2, 3), "transform.0.weight": torch.zeros(4, 3), "transform.0.bias": torch.zeros(4),
          "transform.2.weight": torch.zeros(6, 4), "transform.2.bias": torch.arange(6.0)}
_out = deployable_prefix(_state)
assert set(_out) == {"embedding.weight"}, "只留下 embedding.weight：MLP 不再需要"
assert torch.equal(_out["embedding.weight"], torch.arange(6.0).expand(2, 6)), "P = W2 tanh(W1 P' + b1) + b2"

# %% [markdown] nbgrader={"grade": false, "grade_id": "serve-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 多個 prefix 共用一個 base
#
# - `load_many(adapters)`：`adapters` 是 `{名字: 資料夾}`。建 **一個** 新的 base model
#   （`load_model("gpt2", PROFILE)`），第一個用 `PeftModel.from_pretrained(..., adapter_name=名字)`，
#   其餘用 `model.load_adapter(資料夾, adapter_name=名字)`，回傳 `eval()` 的 PeftModel。
# - `serve(model, requests, max_new_tokens)`：`requests` 是 `[(名字, prompt), …]`，名字可以交錯出現。
#   每個請求先 `model.set_adapter(名字)` 再 greedy decoding（`do_sample=False`，輸入放到 `model.device`），只 decode 新 token、
#   `skip_special_tokens=True`；依請求的順序回傳字串 list。

# %% nbgrader={"grade": false, "grade_id": "serve", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_many(adapters: dict[str, str]) -> PeftModel:
    ### BEGIN SOLUTION
    (first, folder), *rest = adapters.items()
    model = PeftModel.from_pretrained(load_model("gpt2", PROFILE), str(folder), adapter_name=first)
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
# A second "task": the same prefix, scaled, stands in for a prefix trained on another task.
second = ARTIFACTS / "prefix-adapter-2"
second.mkdir(exist_ok=True)
(second / "adapter_config.json").write_text((ARTIFACTS / "prefix-adapter" / "adapter_config.json").read_text())
save_file({k: 1.5 * v for k, v in saved.items()}, second / "adapter_model.safetensors")
server = load_many({"instructions": ARTIFACTS / "prefix-adapter", "scaled": second})
prompt = "### Instruction:\nWhat is the capital of France?\n\n### Response:\n"
answers = serve(server, [("instructions", prompt), ("scaled", prompt), ("instructions", prompt)])
(ARTIFACTS / "served.json").write_text(json.dumps(answers, ensure_ascii=False, indent=2))
size = sum(p.stat().st_size for p in (ARTIFACTS / "prefix-adapter").iterdir())
base_size = sum(p.numel() * p.element_size() for p in load_model("gpt2", PROFILE).parameters())
print(answers)
print(f"one prefix on disk: {size:,} bytes; the base model: {base_size:,} bytes ({base_size / size:.0f}x)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：用它抽的權重呼叫你的 `deployable_prefix`；自己做幾個 prefix，交錯送出請求，
# 再和每個 prefix 單獨載入時的輸出比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def deploy_prefix_on(state: dict) -> dict:
    return deployable_prefix(dict(state))


def serve_requests(adapters: dict[str, str], requests: list[list[str]], max_new_tokens: int = 8) -> list[str]:
    return serve(load_many(adapters), [tuple(r) for r in requests], max_new_tokens)


# %% nbgrader={"grade": true, "grade_id": "test-serve", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert len(answers) == 3 and answers[0] == answers[2], "同一個 adapter、同一個 prompt 應得到相同輸出"
assert set(server.peft_config) == {"instructions", "scaled"}, "兩個 adapter 都應載入同一個 model"
