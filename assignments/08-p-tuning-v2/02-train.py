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
# # 08-2 P-tuning v2 訓練（Train）
#
# Deep prompt tuning（Liu et al., 2022, §3.2）：第 $l$ 層的 self-attention 在計算時，key 與 value 前面各接上
# $n$ 個可訓練的向量 $P_K^{(l)}, P_V^{(l)} \in \mathbb{R}^{n \times d}$：
#
# $$ \mathrm{head} = \mathrm{Attn}\big(xW_Q,\ [P_K^{(l)};\ xW_K],\ [P_V^{(l)};\ xW_V]\big) $$
#
# 真實 token 的 query 會 attend 到這些 prefix，所以每一層的表示都被直接調整，而不只是輸入。實作上，peft 把所有
# prefix 存成一個形狀 `(n, 2·L·d)` 的 embedding（`PrefixEncoder`），forward 時切成每一層的 `(key, value)`，
# 形狀 `(batch, heads, n, head_dim)`，當成 `past_key_values` 交給模型：和文字生成時的 KV cache 同一個介面。
#
# 本 notebook：(1) 從零寫 `PrefixEncoder` 與 `layer_prefixes`（grader 用它抽的權重和 peft 比對）；
# (2) 用 peft 的 `PrefixTuningConfig`（P-tuning v2 原始程式碼的設定：不投影）在 sentiment 上訓練；(3) 只存 adapter。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel, PrefixTuningConfig, get_peft_model
from peft.tuners.prefix_tuning import PrefixEncoder as PeftPrefixEncoder
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
# ## 1. 從零寫 `PrefixEncoder` 與 `layer_prefixes`
#
# `PrefixEncoder(num_virtual_tokens, hidden, num_layers, prefix_projection=False, encoder_hidden_size=None)`，
# 屬性名稱與結構和 peft 的相同（grader 會用 `load_state_dict` 放入它抽的權重）：
# - 不投影：`self.embedding = nn.Embedding(n, 2·L·d)`；
# - 投影：`self.embedding = nn.Embedding(n, d)` 與
#   `self.transform = nn.Sequential(Linear(d, h), Tanh(), Linear(h, 2·L·d))`；
# - `forward(indices)`：`indices` 形狀 `(batch, n)`，回傳 `(batch, n, 2·L·d)`。
#
# `layer_prefixes(prefix, num_layers, num_heads)`：把 `(batch, n, 2·L·d)` 切成 $L$ 個 `(key, value)`，
# 每個形狀 `(batch, heads, n, head_dim)`，`head_dim = d / heads`。最後一維的排法和 peft 相同：先看成
# `(batch, n, 2L, heads, head_dim)`，第三維的第 `2l` 個是第 $l$ 層的 key、第 `2l + 1` 個是它的 value。

# %% nbgrader={"grade": false, "grade_id": "encoder", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PrefixEncoder(nn.Module):
    def __init__(self, num_virtual_tokens: int, hidden: int, num_layers: int, prefix_projection: bool = False,
                 encoder_hidden_size: int | None = None):
        super().__init__()
        self.prefix_projection = prefix_projection
        ### BEGIN SOLUTION
        out = 2 * num_layers * hidden
        if prefix_projection:
            self.embedding = nn.Embedding(num_virtual_tokens, hidden)
            self.transform = nn.Sequential(nn.Linear(hidden, encoder_hidden_size), nn.Tanh(),
                                           nn.Linear(encoder_hidden_size, out))
        else:
            self.embedding = nn.Embedding(num_virtual_tokens, out)
        ### END SOLUTION

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        prefix = self.embedding(indices)
        return self.transform(prefix) if self.prefix_projection else prefix
        ### END SOLUTION


def layer_prefixes(prefix: torch.Tensor, num_layers: int, num_heads: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ### BEGIN SOLUTION
    batch, n, width = prefix.shape
    head_dim = width // (2 * num_layers * num_heads)
    kv = prefix.view(batch, n, 2 * num_layers, num_heads, head_dim).permute(2, 0, 3, 1, 4)
    return [(kv[2 * layer], kv[2 * layer + 1]) for layer in range(num_layers)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-encoder", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false}
for _projection in (False, True):
    _enc = PrefixEncoder(5, 16, 3, _projection, 8)
    _out = _enc(torch.arange(5).unsqueeze(0).expand(2, -1))
    assert tuple(_out.shape) == (2, 5, 2 * 3 * 16), f"projection={_projection}: 輸出形狀應為 (batch, n, 2·L·d)"
    _peft = PeftPrefixEncoder(PrefixTuningConfig(num_virtual_tokens=5, token_dim=16, num_layers=3, encoder_hidden_size=8,
                                                 prefix_projection=_projection, num_transformer_submodules=1))
    assert set(_enc.state_dict()) == set(_peft.state_dict()), f"projection={_projection}: 參數名稱應與 peft 的 PrefixEncoder 相同"
_kv = layer_prefixes(_out, 3, 4)
assert len(_kv) == 3 and tuple(_kv[0][0].shape) == (2, 4, 5, 4), "每層一個 (key, value)，形狀 (batch, heads, n, head_dim)"

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 用 peft 設定 P-tuning v2
#
# - `make_p_tuning_v2_config()` 回傳 `peft.PrefixTuningConfig`：`task_type="SEQ_CLS"`、
#   `num_virtual_tokens=NUM_VIRTUAL_TOKENS`、`prefix_projection=False`（P-tuning v2 原始程式碼的預設）。
#   課程的 `common_utils.peft_setup.make_peft_config("p_tuning_v2", task="sequence-classification")` 做的是同一件事。
# - `build_p_tuning_v2_model(base)`：`get_peft_model(base, make_p_tuning_v2_config())`。BERT 凍結，prefix 與分類頭可訓練
#   （**不要** 凍結分類頭：它是隨機初始化的）。
# - `save_adapter(model, folder)`：用 `save_pretrained` 存 adapter（safetensors）。

# %% nbgrader={"grade": false, "grade_id": "config", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_p_tuning_v2_config() -> PrefixTuningConfig:
    ### BEGIN SOLUTION
    return PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=NUM_VIRTUAL_TOKENS, prefix_projection=False)
    ### END SOLUTION


def build_p_tuning_v2_model(base: nn.Module) -> PeftModel:
    ### BEGIN SOLUTION
    return get_peft_model(base, make_p_tuning_v2_config())
    ### END SOLUTION


def save_adapter(model: PeftModel, folder: Path) -> None:
    ### BEGIN SOLUTION
    model.save_pretrained(folder, safe_serialization=True)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 訓練
#
# 用課程的 `train_steps`（AdamW 只更新可訓練的參數）。下面的 cell 也把 peft 模型裡 prefix 的權重放進你的
# `PrefixEncoder`，比對每一層的 key/value，並算出可訓練參數的比例。若改用 projection，學習率要小十倍：
# prefix 是 MLP 兩層相乘的結果，同樣的步長走得遠得多（在 tiny BERT 上用同一個學習率會發散）。
#
# 和 07 比一比：同樣 10 個 virtual token，prefix 在每一層直接影響 attention，tiny BERT 上 held-out loss
# 下降得比只改輸入的 P-tuning 多（03-inference 會印出數字）；但它仍然是一個很小的模型，別期待接近 fine-tuning。

# %% nbgrader={"grade": false, "grade_id": "train-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 300 if PROFILE == "tiny" else 600
LR = 3e-2 if PROFILE == "tiny" else 1e-3
BATCH_SIZE = 16

# The held-out split (1 row in 8) is kept for the grader: it judges your adapter on rows it never saw.
rows = load_course_dataset("sentiment", PROFILE, split="train")
batches = sentence_batches(rows, tokenizer, BATCH_SIZE, text=["text"], seed=0)

torch.manual_seed(0)
model = build_p_tuning_v2_model(load_model("bert", PROFILE, for_training=True))
peft_encoder, cfg = model.prompt_encoder["default"], model.config
if isinstance(peft_encoder, PeftPrefixEncoder):
    mine = PrefixEncoder(NUM_VIRTUAL_TOKENS, cfg.hidden_size, cfg.num_hidden_layers, peft_encoder.prefix_projection,
                         ENCODER_HIDDEN)
    mine.load_state_dict(peft_encoder.state_dict())
    indices = torch.arange(NUM_VIRTUAL_TOKENS).unsqueeze(0)
    with torch.no_grad():
        ours = layer_prefixes(mine(indices), cfg.num_hidden_layers, cfg.num_attention_heads)
        theirs = peft_encoder(indices).view(1, NUM_VIRTUAL_TOKENS, 2 * cfg.num_hidden_layers, cfg.num_attention_heads, -1)
        theirs = theirs.permute(2, 0, 3, 1, 4).split(2)
    gap = max((k - t[0]).abs().max().item() + (v - t[1]).abs().max().item() for (k, v), t in zip(ours, theirs))
    print(f"{len(ours)} layers of (key, value), each {tuple(ours[0][0].shape)}; largest difference from peft {gap:.2e}")
else:
    gap = float("inf")
    print(f"the model's prompt encoder is a {type(peft_encoder).__name__}, not a PrefixEncoder: check make_p_tuning_v2_config")

n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
print(f"P-tuning v2 (prefix_projection={getattr(peft_encoder, 'prefix_projection', '?')}) + head: {n_trainable:,} "
      f"trainable of {n_total:,} ({100 * n_trainable / n_total:.2f}%)")
# The MLP's output moves with both of its layers: the reparameterised prefix takes a tenfold smaller step.
lr = LR / 10 if getattr(peft_encoder, "prefix_projection", False) else LR
losses = train_steps(model, batches, MAX_STEPS, lr)
save_adapter(model, ARTIFACTS / "p-tuning-v2-adapter")
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} (mean of the last 10 steps {sum(losses[-10:]) / 10:.3f})")

# %% nbgrader={"grade": true, "grade_id": "test-train", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "p-tuning-v2-adapter" / "adapter_model.safetensors").is_file(), "adapter 應存成 safetensors"
assert gap < 1e-5, "你的 PrefixEncoder 與 layer_prefixes 放入 peft 的權重後，每層的 key/value 應與 peft 的相同"
assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 透過下面的函式，把 **它抽的** 權重放進你的 `PrefixEncoder`、用你的 `layer_prefixes` 切開、
# 在新的 base 上呼叫你的 `build_p_tuning_v2_model`，並讀取你訓練好的模型的輸出。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def encoder_output(projection: bool, sizes: list[int], state: dict | None, indices: torch.Tensor) -> dict:
    """Your PrefixEncoder of ``sizes`` = [n, d, layers, h]: its trainable count, and its output on ``indices``
    with the grader's weights ``state`` loaded (None: as initialised)."""
    n, d, layers, h = sizes
    torch.manual_seed(0)
    encoder = PrefixEncoder(n, d, layers, projection, h)
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    if state is not None:
        encoder.load_state_dict(state)
    with torch.no_grad():
        return {"trainable": trainable, "output": encoder.eval()(indices)}


def layer_prefixes_on(prefix: torch.Tensor, num_layers: int, num_heads: int) -> list:
    """Your layer_prefixes on a prefix the grader draws: [[key, value], ...] per layer."""
    return [[k.contiguous(), v.contiguous()] for k, v in layer_prefixes(prefix, num_layers, num_heads)]


def trainable_names() -> list[str]:
    """The parameters your build_p_tuning_v2_model leaves trainable on a fresh base."""
    probe = build_p_tuning_v2_model(load_model("bert", PROFILE, for_training=True))
    return sorted(n for n, p in probe.named_parameters() if p.requires_grad)


def adapted_logits(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Logits of the model you trained and saved (the grader compares them with the reloaded adapter)."""
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        return model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits.cpu()
