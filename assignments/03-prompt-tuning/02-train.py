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
# # 03-2 Prompt tuning 訓練（Train）
#
# Lester et al.（2021）：凍結語言模型的 **所有** 參數，在輸入 embedding 前接上
# $P \in \mathbb{R}^{n \times d_{model}}$，模型看到 $[P; E(x)]$，只有 $P$ 會被更新。
# 和 LoRA 不同，它不動任何一層的權重，所以同一個 base model 可以在一個 batch 裡同時服務許多任務：
# 每筆資料只要換一段 soft prompt（04-deploy 會做這件事）。代價是表達能力：論文指出模型越大，
# prompt tuning 越接近全參數微調；在我們的 tiny 模型上，它學得比 LoRA 慢，這是預期中的。
#
# 本 notebook：(1) 從零寫 `SoftPrompt`；(2) 用 peft 的 `PromptTuningConfig` 訓練並存檔；
# grader 會把你的 `SoftPrompt` 與 peft 的 prompt tuning 在同樣的輸入上比對。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
import math
import warnings
from pathlib import Path

import torch
from peft import PromptTuningConfig, get_peft_model
from torch import nn
from torch.utils.data import DataLoader

from common_utils.datasets import load_course_dataset
from common_utils.instruct import InstructionDataCollator, InstructionDataset
from common_utils.models import default_device, load_model, load_tokenizer
from common_utils.profiles import get_profile
from common_utils.training import to_device

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
IGNORE_INDEX = -100
NUM_VIRTUAL_TOKENS = 16
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "soft-prompt-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫 `SoftPrompt`
#
# `SoftPrompt(embedding, init_token_ids)`：
# - `embedding` 是 base model 的 `nn.Embedding`（`model.get_input_embeddings()`），**不要**把它存成
#   自己的子模組參數去訓練；
# - `self.prompt`：形狀 `(n, d_model)` 的 `nn.Parameter`，初始值是 `embedding.weight[init_token_ids]`
#   的 **複本**（`detach().clone()`：之後更新 soft prompt 不能改到詞彙表）；
# - `forward(inputs_embeds)`：輸入 `(batch, L, d)`，回傳 `(batch, n + L, d)`，soft prompt 在 **前面**。
#
# 再寫 `prompt_tuned_forward(model, soft_prompt, input_ids, attention_mask, labels)`：用
# `model.get_input_embeddings()` 把 `input_ids` 轉成 embedding、接上 soft prompt，attention mask 與
# labels 照 01-setup 的規則延長（前面補 1 與 -100；補上的張量建在輸入所在的 device 上），再以 `inputs_embeds=`
# 呼叫 `model`，回傳它的輸出。

# %% nbgrader={"grade": false, "grade_id": "soft-prompt", "locked": false, "schema_version": 3, "solution": true, "task": false}
class SoftPrompt(nn.Module):
    def __init__(self, embedding: nn.Embedding, init_token_ids: torch.Tensor):
        super().__init__()
        ### BEGIN SOLUTION
        self.num_virtual_tokens = len(init_token_ids)
        self.prompt = nn.Parameter(embedding.weight[init_token_ids].detach().clone())
        ### END SOLUTION

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        batch = inputs_embeds.shape[0]
        prompt = self.prompt.unsqueeze(0).expand(batch, -1, -1).to(inputs_embeds.dtype)
        return torch.cat([prompt, inputs_embeds], dim=1)
        ### END SOLUTION


def prompt_tuned_forward(model, soft_prompt: SoftPrompt, input_ids, attention_mask, labels=None):
    ### BEGIN SOLUTION
    n, batch = soft_prompt.num_virtual_tokens, input_ids.shape[0]
    inputs_embeds = soft_prompt(model.get_input_embeddings()(input_ids))
    mask = torch.cat([torch.ones(batch, n, dtype=attention_mask.dtype, device=attention_mask.device), attention_mask], dim=1)
    if labels is not None:
        labels = torch.cat([torch.full((batch, n), IGNORE_INDEX, dtype=labels.dtype, device=labels.device), labels], dim=1)
    return model(inputs_embeds=inputs_embeds, attention_mask=mask, labels=labels)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-soft-prompt", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
_base = load_model("llama", PROFILE)
_sp = SoftPrompt(_base.get_input_embeddings(), torch.tensor([3, 5, 7]))
assert tuple(_sp.prompt.shape) == (3, _base.config.hidden_size), "prompt 形狀應為 (n, d_model)"
assert torch.equal(_sp.prompt, _base.get_input_embeddings().weight[[3, 5, 7]]), "prompt 應從 embedding 的列複製"
assert tuple(_sp(torch.zeros(2, 4, _base.config.hidden_size, device=_base.device)).shape) == (2, 7, _base.config.hidden_size)
_ids = torch.tensor([[4, 5]], device=_base.device)
_out = prompt_tuned_forward(_base, _sp, _ids, torch.ones_like(_ids), _ids)
assert _out.logits.shape[1] == 5, "輸出長度應為 n + L"

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 用 peft 設定 prompt tuning
#
# `make_prompt_tuning_config()` 回傳 `peft.PromptTuningConfig`：`task_type="CAUSAL_LM"`、
# `num_virtual_tokens=NUM_VIRTUAL_TOKENS`，並從 **詞彙表** 初始化（不要用 `"RANDOM"`）：
# `prompt_tuning_init="SAMPLE_VOCAB"`（從詞彙表隨機抽 token 的 embedding）或 `"TEXT"`
# （需要 `prompt_tuning_init_text` 與 `tokenizer_name_or_path`）。
#
# `count_trainable(model)` 回傳 `(trainable, total)`。grader 會在它自己選的 prompt 長度上呼叫你的函式，
# 並確認它等於 $n \times d_{model}$。`save_adapter(model, folder)` 只存 soft prompt（safetensors）。

# %% nbgrader={"grade": false, "grade_id": "config", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_prompt_tuning_config() -> PromptTuningConfig:
    ### BEGIN SOLUTION
    return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=NUM_VIRTUAL_TOKENS,
                              prompt_tuning_init="SAMPLE_VOCAB")
    ### END SOLUTION


def count_trainable(model: nn.Module) -> tuple[int, int]:
    ### BEGIN SOLUTION
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
    ### END SOLUTION


def save_adapter(model, folder: Path) -> None:
    ### BEGIN SOLUTION
    model.save_pretrained(folder, safe_serialization=True)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 訓練迴圈
#
# `train(model, batches, max_steps, lr)`：`torch.optim.AdamW` 只更新 `requires_grad` 的參數，
# 依序取 `batches`（用完從頭再來），每步 forward → backward → step → zero_grad，回傳每步 loss。
# base model 必須保持凍結：grader 會在幾步之後檢查 base 的 **每一個** 參數都沒有動。
# Prompt tuning 需要比 LoRA 大得多的 learning rate（Lester et al. 用 0.3）：只有 $n \times d$
# 個參數，而且它們要移動到 embedding 空間裡有用的位置。

# %% nbgrader={"grade": false, "grade_id": "train-loop", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train(model: nn.Module, batches: list[dict], max_steps: int, lr: float) -> list[float]:
    ### BEGIN SOLUTION
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _, batch in zip(range(max_steps), itertools.cycle(batches)):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "data", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 60 if PROFILE == "tiny" else 300
LR = 3e-2 if PROFILE == "tiny" else 3e-1
BATCH_SIZE = 8 if PROFILE == "tiny" else 4

rows = load_course_dataset("instructions", PROFILE, split="train")
dataset = InstructionDataset(rows, tokenizer, template="alpaca", max_length=128)
collator = InstructionDataCollator(tokenizer, pad_to_multiple_of=8)
loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collator,
                    generator=torch.Generator().manual_seed(0))
DEVICE = default_device(PROFILE)  # the GPU under `full`, the CPU under `tiny`: where load_model puts the model
batches = [to_device(batch, DEVICE) for _, batch in zip(range(MAX_STEPS), itertools.cycle(loader))]

# %% nbgrader={"grade": false, "grade_id": "train-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = get_peft_model(load_model("llama", PROFILE, for_training=True), make_prompt_tuning_config())
n_trainable, n_total = count_trainable(model)
hidden = model.config.hidden_size
print(f"prompt tuning: {n_trainable:,} trainable of {n_total:,} ({100 * n_trainable / n_total:.3f}%)"
      f" = {NUM_VIRTUAL_TOKENS} tokens x {hidden} hidden")
losses = train(model, batches, MAX_STEPS, LR)
save_adapter(model, ARTIFACTS / "prompt-adapter")
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-train", "locked": true, "points": 12, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "prompt-adapter" / "adapter_model.safetensors").is_file(), "adapter 應存成 safetensors"
assert n_trainable == NUM_VIRTUAL_TOKENS * hidden, f"可訓練參數應為 {NUM_VIRTUAL_TOKENS} x {hidden}，實際 {n_trainable:,}"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：它們在 grader 選的輸入上執行 **你的** `SoftPrompt`、`prompt_tuned_forward`、
# `make_prompt_tuning_config`、`count_trainable` 與 `train`。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def fresh_soft_prompt(init_token_ids: list[int]) -> dict:
    """Your SoftPrompt on a fresh base: its prompt and trainable counts (its own, and the base's after wrapping)."""
    base = load_model("llama", PROFILE)
    for p in base.parameters():
        p.requires_grad_(False)
    sp = SoftPrompt(base.get_input_embeddings(), torch.tensor(init_token_ids))
    return {"prompt": sp.prompt.detach().clone().cpu(),
            "trainable": sum(p.numel() for p in sp.parameters() if p.requires_grad),
            "vocab_unchanged": torch.equal(base.get_input_embeddings().weight, load_model("llama", PROFILE).get_input_embeddings().weight)}


def soft_prompt_forward(prompt, input_ids, attention_mask, labels) -> dict:
    """Your SoftPrompt holding `prompt`, run through your prompt_tuned_forward on a fresh base."""
    base = load_model("llama", PROFILE).eval()
    sp = SoftPrompt(base.get_input_embeddings(), torch.zeros(prompt.shape[0], dtype=torch.long))
    inputs = to_device({"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}, base.device)
    with torch.no_grad():
        sp.prompt.copy_(prompt)
        out = prompt_tuned_forward(base, sp, **inputs)
    return {"logits": out.logits.cpu(), "loss": out.loss.cpu()}


def count_trainable_on(num_virtual_tokens: int, unfreeze: list[str]) -> list[int]:
    """Your count_trainable on peft prompt tuning of a fresh base, with `unfreeze` parameters trainable too."""
    probe = get_peft_model(load_model("llama", PROFILE),
                           PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens))
    for name, p in probe.named_parameters():
        if any(u in name for u in unfreeze):
            p.requires_grad_(True)
    return [int(n) for n in count_trainable(probe)]


def initial_peft_prompt(seed: int) -> torch.Tensor:
    """The soft prompt your make_prompt_tuning_config gives a fresh peft model, before training."""
    torch.manual_seed(seed)
    fresh = get_peft_model(load_model("llama", PROFILE), make_prompt_tuning_config())
    return fresh.get_prompt_embedding_to_save("default").detach().clone().cpu()


def state_after_steps(steps: int) -> dict:
    """Your config and train() for `steps` steps: every base parameter afterwards, and the prompt before/after."""
    torch.manual_seed(0)
    fresh = get_peft_model(load_model("llama", PROFILE, for_training=True), make_prompt_tuning_config())
    before = fresh.get_prompt_embedding_to_save("default").detach().clone().cpu()
    train(fresh, batches[:steps], steps, LR)
    base = {k: v.detach().clone().cpu() for k, v in fresh.get_base_model().state_dict().items()}
    return {"base": base, "before": before, "after": fresh.get_prompt_embedding_to_save("default").detach().clone().cpu()}


def adapted_logits(input_ids: torch.Tensor) -> torch.Tensor:
    """Logits of the model you trained and saved (the grader compares them with the reloaded adapter)."""
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids.to(model.device)).logits.cpu()
