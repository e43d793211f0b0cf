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
# # 07-2 P-tuning 訓練（Train）
#
# Liu et al.（2021, §3）：模型看到的輸入是 $[P_1 \dots P_n;\ E(x)]$，其中 virtual token 的向量不是直接訓練的參數，
# 而是 prompt encoder 的輸出 $P = f(e_1 \dots e_n)$。只有 $f$ 與它的輸入 embedding $e$（加上分類頭）會被更新，
# BERT 的每一個權重都凍結。
#
# 本 notebook：(1) 從零寫 `PromptEncoder`（grader 會把它抽的權重放進你的模組，和 peft 的
# `peft.tuners.p_tuning.PromptEncoder` 比對）；(2) 用 peft 的 `PromptEncoderConfig`（**不是** prompt tuning 的
# `PromptTuningConfig`：那是另一個方法，沒有 encoder）在 sentiment 上訓練；(3) 只存 adapter。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel, PromptEncoderConfig, get_peft_model
from peft.tuners.p_tuning import PromptEncoder as PeftPromptEncoder
from torch import nn

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile
from common_utils.training import sentence_batches, train_steps

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE, family="bert")
NUM_VIRTUAL_TOKENS, ENCODER_HIDDEN = 10, 64
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "encoder-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫 `PromptEncoder`
#
# `PromptEncoder(num_virtual_tokens, token_dim, encoder_hidden_size, encoder_type="MLP", num_layers=2)`，
# 屬性名稱與結構和 peft 的相同（grader 會用 `load_state_dict` 把它抽的權重放進來）：
# - `self.embedding = nn.Embedding(num_virtual_tokens, token_dim)`：virtual token 的輸入向量 $e_i$；
# - `encoder_type == "MLP"`：`self.mlp_head = nn.Sequential(Linear(d, h), ReLU(), Linear(h, h), ReLU(), Linear(h, d))`；
# - `encoder_type == "LSTM"`：`self.lstm_head = nn.LSTM(d, h, num_layers=num_layers, bidirectional=True, batch_first=True)`，
#   `self.mlp_head = nn.Sequential(Linear(2h, 2h), ReLU(), Linear(2h, d))`（雙向 LSTM 的輸出是兩個方向接起來的 $2h$）；
#   其他 `encoder_type` 請 `raise ValueError`。
# - `forward(indices)`：`indices` 是形狀 `(batch, n)` 的 token 位置（通常是 `0 … n-1`），先查 `embedding`，
#   LSTM 版本再過 `lstm_head`（取它回傳的第一個值：每個位置的輸出），最後過 `mlp_head`；回傳 `(batch, n, token_dim)`。

# %% nbgrader={"grade": false, "grade_id": "encoder", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PromptEncoder(nn.Module):
    def __init__(self, num_virtual_tokens: int, token_dim: int, encoder_hidden_size: int, encoder_type: str = "MLP",
                 num_layers: int = 2):
        super().__init__()
        self.encoder_type = encoder_type
        ### BEGIN SOLUTION
        d, h = token_dim, encoder_hidden_size
        self.embedding = nn.Embedding(num_virtual_tokens, d)
        if encoder_type == "MLP":
            self.mlp_head = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, d))
        elif encoder_type == "LSTM":
            self.lstm_head = nn.LSTM(d, h, num_layers=num_layers, bidirectional=True, batch_first=True)
            self.mlp_head = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, d))
        else:
            raise ValueError(f"encoder_type must be 'MLP' or 'LSTM', got {encoder_type!r}")
        ### END SOLUTION

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        embeds = self.embedding(indices)
        if self.encoder_type == "LSTM":
            embeds = self.lstm_head(embeds)[0]
        return self.mlp_head(embeds)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-encoder", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
for _type in ("MLP", "LSTM"):
    _enc = PromptEncoder(5, 16, 8, _type)
    _out = _enc(torch.arange(5).unsqueeze(0).expand(3, -1))
    assert tuple(_out.shape) == (3, 5, 16), f"{_type}: 輸出形狀應為 (batch, n, token_dim)，實際 {tuple(_out.shape)}"
    _peft = PeftPromptEncoder(PromptEncoderConfig(num_virtual_tokens=5, token_dim=16, encoder_hidden_size=8,
                                                  num_transformer_submodules=1, encoder_reparameterization_type=_type))
    assert set(_enc.state_dict()) == set(_peft.state_dict()), f"{_type}: 參數名稱應與 peft 的 PromptEncoder 相同"

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 用 peft 設定 P-tuning
#
# - `make_p_tuning_config()` 回傳 `peft.PromptEncoderConfig`：`task_type="SEQ_CLS"`（序列分類，peft 會把分類頭
#   放進 `modules_to_save` 讓它可訓練）、`num_virtual_tokens=NUM_VIRTUAL_TOKENS`、`encoder_hidden_size=ENCODER_HIDDEN`，
#   `encoder_reparameterization_type` 用 `"MLP"`（peft 的預設）或 `"LSTM"`（論文的做法）都可以。
#   原本的課程教材在這裡用錯了類別：`PromptTuningConfig` 是 prompt tuning（03），`PrefixTuningConfig` 是 P-tuning v2（08）。
# - `build_p_tuning_model(base)`：`get_peft_model(base, make_p_tuning_config())`，回傳 PeftModel。BERT 的權重凍結，
#   prompt encoder 與分類頭可訓練（**不要** 凍結分類頭：它是隨機初始化的）。
# - `save_adapter(model, folder)`：用 `save_pretrained` 存 adapter（safetensors）。peft 存的是 prompt encoder 的
#   **輸出** $n \times d$（加上分類頭），不是 encoder 本身：推論時不再需要 encoder。

# %% nbgrader={"grade": false, "grade_id": "config", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_p_tuning_config() -> PromptEncoderConfig:
    ### BEGIN SOLUTION
    return PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=NUM_VIRTUAL_TOKENS,
                               encoder_hidden_size=ENCODER_HIDDEN, encoder_reparameterization_type="MLP")
    ### END SOLUTION


def build_p_tuning_model(base: nn.Module) -> PeftModel:
    ### BEGIN SOLUTION
    return get_peft_model(base, make_p_tuning_config())
    ### END SOLUTION


def save_adapter(model: PeftModel, folder: Path) -> None:
    ### BEGIN SOLUTION
    model.save_pretrained(folder, safe_serialization=True)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 訓練
#
# 訓練迴圈在 01-lora 寫過了，這裡用課程的 `train_steps`（AdamW 只更新可訓練的參數）。下面的 cell 也把你的
# `PromptEncoder` 放進 peft 模型裡那個 encoder 的權重，比對兩者的輸出，並算出可訓練參數的比例。
# 學習率比 LoRA 大：可訓練的只有 encoder 與分類頭，base 的表示完全不動。
#
# 老實說：tiny BERT（hidden 64、2 層）上，只在輸入端加幾個 virtual token 能改變的很有限，held-out loss 只會
# 下降一點（03-inference 會印出 base、未訓練與訓練後的數字）。論文也指出 P-tuning 在中小型模型上不如
# fine-tuning，這正是 P-tuning v2（08）要解決的問題。grader 因此不設絕對門檻，而是和參考解答的下降量比。

# %% nbgrader={"grade": false, "grade_id": "train-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 300 if PROFILE == "tiny" else 600
LR = 3e-2 if PROFILE == "tiny" else 1e-3
BATCH_SIZE = 16

# The held-out split (1 row in 8) is kept for the grader: it judges your adapter on rows it never saw.
rows = load_course_dataset("sentiment", PROFILE, split="train")
batches = sentence_batches(rows, tokenizer, BATCH_SIZE, text=["text"], seed=0)

torch.manual_seed(0)
model = build_p_tuning_model(load_model("bert", PROFILE, for_training=True))
peft_encoder = model.prompt_encoder["default"]
if isinstance(peft_encoder, PeftPromptEncoder):
    mine = PromptEncoder(NUM_VIRTUAL_TOKENS, model.config.hidden_size, ENCODER_HIDDEN, peft_encoder.encoder_type)
    mine.load_state_dict(peft_encoder.state_dict())
    indices = torch.arange(NUM_VIRTUAL_TOKENS).unsqueeze(0)
    with torch.no_grad():
        gap = (mine(indices) - peft_encoder(indices)).abs().max().item()
    print(f"your PromptEncoder vs peft's, same weights: largest difference {gap:.2e}")
else:
    gap = float("inf")
    print(f"the model's prompt encoder is a {type(peft_encoder).__name__}, not P-tuning's: check make_p_tuning_config")

n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
print(f"P-tuning ({getattr(peft_encoder, 'encoder_type', '?')}) + head: {n_trainable:,} trainable of {n_total:,} "
      f"({100 * n_trainable / n_total:.2f}%)")
losses = train_steps(model, batches, MAX_STEPS, LR)
save_adapter(model, ARTIFACTS / "p-tuning-adapter")
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} (mean of the last 10 steps {sum(losses[-10:]) / 10:.3f})")

# %% nbgrader={"grade": true, "grade_id": "test-train", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "p-tuning-adapter" / "adapter_model.safetensors").is_file(), "adapter 應存成 safetensors"
assert gap < 1e-5, "你的 PromptEncoder 放入 peft 的權重後，輸出應與 peft 的相同"
assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 透過下面的函式，把 **它抽的** 權重放進你的 `PromptEncoder`、在新的 base 上呼叫你的 `build_p_tuning_model`，
# 並讀取你訓練好的模型的輸出（和它自己重新載入的 adapter 比對）。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def encoder_output(encoder_type: str, sizes: list[int], state: dict | None, indices: torch.Tensor) -> dict:
    """Your PromptEncoder of ``sizes`` = [n, d, h, layers]: its trainable count, and its output on ``indices``
    with the grader's weights ``state`` loaded (None: as initialised)."""
    n, d, h, layers = sizes
    torch.manual_seed(0)
    encoder = PromptEncoder(n, d, h, encoder_type, layers)
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    if state is not None:
        encoder.load_state_dict(state)
    with torch.no_grad():
        return {"trainable": trainable, "output": encoder.eval()(indices)}


def trainable_names() -> list[str]:
    """The parameters your build_p_tuning_model leaves trainable on a fresh base."""
    probe = build_p_tuning_model(load_model("bert", PROFILE, for_training=True))
    return sorted(n for n, p in probe.named_parameters() if p.requires_grad)


def adapted_logits(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Logits of the model you trained and saved (the grader compares them with the reloaded adapter)."""
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        return model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits.cpu()
