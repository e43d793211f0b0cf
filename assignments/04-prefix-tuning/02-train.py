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
# # 04-2 Prefix tuning 訓練（Train）
#
# Li & Liang（2021）：凍結語言模型，在每一層 attention 的 keys、values 前面接上 $n$ 個可訓練的向量。
# 本 notebook：(1) 從零寫 `PrefixEncoder`：產生每一層的 key/value prefix，可選擇經過 reparameterisation MLP；
# (2) 寫 `prefix_forward`：把 prefix 放進 GPT-2 的 KV cache 再做 forward；(3) 用 peft 的 `PrefixTuningConfig`
# 訓練並存檔。grader 會把它抽的權重載進你的 `PrefixEncoder`，和 peft 的 prefix tuning 逐值比對。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PrefixTuningConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers import DynamicCache

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile
from common_utils.training import instruction_batches, to_device, train_steps

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE, "gpt2")
NUM_VIRTUAL_TOKENS = 10 if PROFILE == "tiny" else 20
ENCODER_HIDDEN = 64 if PROFILE == "tiny" else 512
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "encoder-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫 `PrefixEncoder`
#
# `PrefixEncoder(num_virtual_tokens, num_layers, num_heads, head_dim, prefix_projection, encoder_hidden_size)`，
# 令 $d$ = `num_heads * head_dim`（hidden size）、$L$ = `num_layers`：
# - `prefix_projection=False`：`self.embedding = nn.Embedding(n, 2 * L * d)`，每一列就是一個 virtual token
#   在所有層的 key 與 value；
# - `prefix_projection=True`（論文 §4.3 的 reparameterisation）：`self.embedding = nn.Embedding(n, d)` 是 $P'$，
#   `self.transform = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, 2 * L * d))` 把它變成 $P$。
#
# 屬性名稱 `embedding`、`transform` 請照寫：grader 會用 `load_state_dict` 把它抽的權重載進來。
#
# `forward(batch_size)` 回傳長度 $L$ 的 list，第 $\ell$ 個是 `(key, value)`，兩者形狀都是
# `(batch_size, num_heads, n, head_dim)`：這是 transformers 的 KV cache 每一層存的形狀。
# 每個 virtual token 的 $2Ld$ 個數依序是 **(層, key/value, head, head_dim)**：第 0 層的 key、第 0 層的 value、
# 第 1 層的 key……（peft 也這樣排，所以同樣的權重會給同樣的 prefix）。

# %% nbgrader={"grade": false, "grade_id": "encoder", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PrefixEncoder(nn.Module):
    def __init__(self, num_virtual_tokens: int, num_layers: int, num_heads: int, head_dim: int,
                 prefix_projection: bool = False, encoder_hidden_size: int | None = None):
        super().__init__()
        ### BEGIN SOLUTION
        self.num_virtual_tokens, self.num_layers = num_virtual_tokens, num_layers
        self.num_heads, self.head_dim = num_heads, head_dim
        self.prefix_projection = prefix_projection
        hidden = num_heads * head_dim
        if prefix_projection:
            self.embedding = nn.Embedding(num_virtual_tokens, hidden)
            self.transform = nn.Sequential(nn.Linear(hidden, encoder_hidden_size), nn.Tanh(),
                                           nn.Linear(encoder_hidden_size, 2 * num_layers * hidden))
        else:
            self.embedding = nn.Embedding(num_virtual_tokens, 2 * num_layers * hidden)
        ### END SOLUTION

    def forward(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ### BEGIN SOLUTION
        prefix = self.embedding.weight
        if self.prefix_projection:
            prefix = self.transform(prefix)
        n = self.num_virtual_tokens
        # (n, 2Ld) -> (n, layer * key/value, head, head_dim) -> (layer * key/value, head, n, head_dim)
        kv = prefix.view(n, 2 * self.num_layers, self.num_heads, self.head_dim).permute(1, 2, 0, 3)
        kv = kv.unsqueeze(1).expand(-1, batch_size, -1, -1, -1)
        return [(kv[2 * layer], kv[2 * layer + 1]) for layer in range(self.num_layers)]
        ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "forward-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 帶 prefix 的 forward
#
# transformers 5 的 `past_key_values` 不再是 tuple，而是 `Cache` 物件：建一個 `DynamicCache()`，對每一層呼叫
# `cache.update(key, value, layer_idx)` 放進 prefix，再傳給模型。模型會把真實 token 的 key/value 接在後面，
# 所以 **每次 forward 都要建新的 cache**。
#
# 實作 `prefix_forward(model, prefix, input_ids, attention_mask, labels=None)`：`prefix` 是 `PrefixEncoder`
# 的輸出（每層一對 `(key, value)`）。照 01-setup 的規則延長 `attention_mask`（前面補 $n$ 個 1）、算
# `position_ids`（真實 token 從 $n$ 開始數，left padding 也一樣），再以 `input_ids`、`attention_mask`、
# `position_ids`、`past_key_values`、`labels` 呼叫 `model`，回傳它的輸出。labels **不用** 延長。
#
# 為什麼要自己傳 `position_ids`：沒有傳的話，GPT-2 讓每一列都從 cache 長度 $n$ 開始數，left padding 的列就整列錯位
# （peft 的 forward 也沒有傳，所以它在 left padding 的批次上和單獨跑的結果不同；grader 會檢查你的版本沒有這個問題）。

# %% nbgrader={"grade": false, "grade_id": "forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prefix_forward(model, prefix: list[tuple[torch.Tensor, torch.Tensor]], input_ids: torch.Tensor,
                   attention_mask: torch.Tensor, labels: torch.Tensor | None = None):
    ### BEGIN SOLUTION
    cache = DynamicCache()
    for layer, (key, value) in enumerate(prefix):
        cache.update(key, value, layer)
    n = prefix[0][0].shape[2]
    ones = torch.ones(input_ids.shape[0], n, dtype=attention_mask.dtype, device=attention_mask.device)
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0) + n
    return model(input_ids=input_ids, attention_mask=torch.cat([ones, attention_mask], dim=1),
                 position_ids=positions, past_key_values=cache, labels=labels)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-encoder", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
_enc = PrefixEncoder(3, num_layers=2, num_heads=4, head_dim=5, prefix_projection=True, encoder_hidden_size=6)
_kv = _enc(2)
assert len(_kv) == 2, "每一層一對 (key, value)"
assert tuple(_kv[0][0].shape) == (2, 4, 3, 5), "key 形狀應為 (batch, heads, n, head_dim)"
assert sum(p.numel() for p in _enc.parameters()) == 3 * 20 + (20 * 6 + 6) + (6 * 80 + 80), "P' 加上 MLP 的參數量"

# %% nbgrader={"grade": true, "grade_id": "test-forward", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
_base = load_model("gpt2", PROFILE).eval()
_cfg = _base.config
_enc = PrefixEncoder(4, _cfg.n_layer, _cfg.n_head, _cfg.n_embd // _cfg.n_head).to(_base.device)
_ids = torch.tensor([[5, 6, 7]], device=_base.device)
with torch.no_grad():
    _out = prefix_forward(_base, _enc(1), _ids, torch.ones_like(_ids), _ids)
assert _out.logits.shape[1] == 3, "prefix 在 cache 裡：logits 長度仍是 L"
assert torch.isfinite(_out.loss), "loss 應為有限值"

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 用 peft 設定 prefix tuning
#
# `make_prefix_config()` 回傳 `peft.PrefixTuningConfig`：`task_type="CAUSAL_LM"`、
# `num_virtual_tokens=NUM_VIRTUAL_TOKENS`、用論文的 reparameterisation（`prefix_projection=True`、
# `encoder_hidden_size=ENCODER_HIDDEN`）。peft 會從模型的設定讀出層數、heads 與 hidden size。
#
# `save_adapter(model, folder)`：存成 safetensors。peft 存檔時只存 MLP 的 **輸出** $P$（形狀 $n \times 2Ld$），
# 不存 MLP：載回來時它直接用 $P$。

# %% nbgrader={"grade": false, "grade_id": "config", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_prefix_config() -> PrefixTuningConfig:
    ### BEGIN SOLUTION
    return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=NUM_VIRTUAL_TOKENS,
                              prefix_projection=True, encoder_hidden_size=ENCODER_HIDDEN)
    ### END SOLUTION


def save_adapter(model, folder: Path) -> None:
    ### BEGIN SOLUTION
    model.save_pretrained(folder, safe_serialization=True)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 訓練
#
# 訓練迴圈是課程共用的 `train_steps`（01-lora 寫過了）：AdamW 只更新可訓練的參數。base model 完全凍結，
# 梯度只流到 prefix（與 MLP）。held-out 的資料（每 8 列 1 列）留給 grader：它用你存的 prefix 在沒看過的
# 資料上算 loss。可訓練參數的比例由程式算出來印出。

# %% nbgrader={"grade": false, "grade_id": "data", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 100 if PROFILE == "tiny" else 300
LR = 5e-3 if PROFILE == "tiny" else 5e-4
BATCH_SIZE = 8 if PROFILE == "tiny" else 4

rows = load_course_dataset("instructions", PROFILE, split="train")
batches = instruction_batches(rows, tokenizer, BATCH_SIZE, MAX_STEPS)
print(f"{len(rows):,} examples, {len(batches)} batches of {BATCH_SIZE}")

# %% nbgrader={"grade": false, "grade_id": "train-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = get_peft_model(load_model("gpt2", PROFILE, for_training=True), make_prefix_config())
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
print(f"prefix tuning (training, with the MLP): {n_trainable:,} trainable of {n_total:,} "
      f"({100 * n_trainable / n_total:.3f}%)")
losses = train_steps(model, batches, MAX_STEPS, LR)
save_adapter(model, ARTIFACTS / "prefix-adapter")
# The training-time encoder (P' and the MLP) for 04-deploy, which removes the MLP by hand.
(ARTIFACTS / "prefix-train-state").mkdir(exist_ok=True)
save_file({k: v.detach().contiguous() for k, v in model.prompt_encoder["default"].state_dict().items()},
          ARTIFACTS / "prefix-train-state" / "encoder.safetensors")
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-train", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "prefix-adapter" / "adapter_model.safetensors").is_file(), "adapter 應存成 safetensors"
assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：在 grader 選的大小與權重上執行 **你的** `PrefixEncoder` 與 `prefix_forward`，
# 並讀出你訓練好的模型。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def encoder_kv(sizes: dict, state: dict | None, batch_size: int) -> dict:
    """Your PrefixEncoder built with `sizes`, holding `state` when given: its prefix and trainable count."""
    torch.manual_seed(0)
    encoder = PrefixEncoder(**sizes)
    if state is not None:
        encoder.load_state_dict(state)
    with torch.no_grad():
        kv = encoder(batch_size)
    return {"kv": [[k, v] for k, v in kv], "trainable": sum(p.numel() for p in encoder.parameters() if p.requires_grad)}


def prefix_logits(prefix: list, input_ids, attention_mask, labels=None) -> dict:
    """Your prefix_forward on a fresh base with the grader's prefix (per layer [key, value])."""
    base = load_model("gpt2", PROFILE).eval()
    inputs = to_device({"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}, base.device)
    with torch.no_grad():
        out = prefix_forward(base, [(k.to(base.device), v.to(base.device)) for k, v in prefix], **inputs)
    return {"logits": out.logits.cpu(), "loss": None if out.loss is None else out.loss.cpu()}


def trained_encoder_state() -> dict:
    """The trained prefix encoder (P' and the MLP) of the model you trained."""
    return {k: v.detach().clone().cpu() for k, v in model.prompt_encoder["default"].state_dict().items()}


def adapted_logits(input_ids: torch.Tensor) -> torch.Tensor:
    """Logits of the model you trained (the grader compares them with the reloaded adapter)."""
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids.to(model.device)).logits.cpu()


def trained_generate(prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy decoding with the model you trained, in memory (the grader compares your reloaded adapter's)."""
    model.eval()
    texts = []
    for text in prompts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"].to(model.device)
        with torch.no_grad():
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)[0]
        texts.append(tokenizer.decode(seq[ids.shape[1]:], skip_special_tokens=True))
    return texts
