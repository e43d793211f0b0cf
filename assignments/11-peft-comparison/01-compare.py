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
# # 1.1 PEFT 方法的比較（Methods compared）
#
# 前面的 lab 各自教了一種 PEFT 方法。這個 lab 把它們 **放在同一個任務上比較**：情感分類（sentiment），
# 同一個 BERT、同樣的資料與步數，每個方法一列：可訓練參數比例、訓練時的記憶體、每步時間、held-out 準確率，再畫一張圖。
#
# | 方法 | 論文 | 訓練的是 |
# | --- | --- | --- |
# | `full` | — | 所有參數（對照組） |
# | `lora` | Hu et al., 2021 | query/value 旁的低秩矩陣 $BA$ |
# | `bottleneck` | Houlsby et al., 2019 | 每層兩個小 MLP（down → up，殘差） |
# | `prompt_tuning` | Lester et al., 2021 | 輸入前的 soft prompt |
# | `prefix_tuning` | Li & Liang, 2021 | 每層 key/value 前的 prefix，經過重參數化 MLP |
# | `p_tuning` | Liu et al., 2021 | prompt encoder（MLP）產生的輸入 prompt |
# | `p_tuning_v2` | Liu et al., 2022 | 每層的 deep prompt，不經 MLP（照論文程式碼） |
# | `ia3` | Liu et al., 2022 | 縮放 key、value 與 FFN 輸入的向量 |
# | `bitfit` | Ben Zaken et al., 2022 | 所有 bias |
#
# 除了 `full`，每個方法的分類頭都是新的、可訓練的（凍結一個隨機初始化的分類頭是原課程的錯誤）。
#
# 比較表的價值全在數字可信：同一把尺量每一列。所以先寫五把尺，grader 會在 **它自己建的** 模型與輸入上
# 呼叫它們，和自己算的結果比對；再用它們量每個方法，組成表、畫圖。表的每一格 grader 都會重算：參數量在它自己建的
# 模型上數，記憶體用同一個 batch 重算，準確率從你存下的參數重新評估，時間和參考解答在同一批次量到的相比。
#
# 1. `count_trainable(model)`：可訓練與全部參數量。
# 2. `activation_bytes(model, batch)`、`training_memory(model, batch)`：訓練一步要放在記憶體裡的東西。
# 3. `seconds_per_step(model, batches, steps)`：一步訓練要幾秒。
# 4. `accuracy(model, batches)`：分類準確率。
# 5. `table_row`、`save_trainable`、`plot_comparison`：一列、存參數、一張圖。
#
# 預設 `COURSE_PROFILE=tiny`：已在課程語料上預訓練的小 BERT，CPU 上幾分鐘內跑完。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import copy
import json
import statistics
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

from common_utils.datasets import load_course_dataset  # noqa: E402
from common_utils.models import default_device, load_model, load_tokenizer  # noqa: E402
from common_utils.peft_setup import COMPARED, compared_model, compared_model_on_the_fence  # noqa: E402
from common_utils.profiles import get_profile  # noqa: E402
from common_utils.training import model_device, sentence_batches, to_device, train_steps  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
(ARTIFACTS / "methods").mkdir(parents=True, exist_ok=True)
tokenizer = load_tokenizer(PROFILE, family="bert")
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "count-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 參數量
#
# `count_trainable(model)` 回傳 `(trainable, total)`：`requires_grad` 的參數個數，與全部參數個數
# （用 `p.numel()` 加總）。比較表裡的「可訓練比例」是 `100 * trainable / total`。

# %% nbgrader={"grade": false, "grade_id": "count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_trainable(model: nn.Module) -> tuple[int, int]:
    ### BEGIN SOLUTION
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "memory-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 訓練時的記憶體
#
# 訓練一步時，記憶體裡至少要有：
# - **權重**：所有參數（凍結的也在）；
# - **梯度**：只有可訓練的參數有；
# - **AdamW 狀態**：每個可訓練參數兩個 fp32 數（一階與二階動差，`exp_avg`、`exp_avg_sq`）；
# - **activation**：forward 時 autograd 為了 backward 存下的張量。PEFT 省的是前三項；prompt 類方法把序列
#   變長，反而會讓最後一項變大，這張表會讓你看到。
#
# `activation_bytes(model, batch)`：在 `model.train()` 下跑一次 `model(**batch)`（要建 autograd graph，
# 所以 **不要** 用 `torch.no_grad()`），用 `torch.autograd.graph.saved_tensors_hooks(pack, unpack)` 看
# autograd 存下的每個張量，回傳它們佔的 bytes：
# - 以 **storage** 為單位，每個 storage 只算一次（`t.untyped_storage().data_ptr()` 當鍵，
#   大小是 `t.untyped_storage().nbytes()`）：同一塊記憶體被存兩次，不會佔兩倍；
# - 模型自己的參數（它們的 storage）**不算**：它們已經算在「權重」裡。
#
# `training_memory(model, batch)` 回傳 dict（單位都是 bytes）：
# `{"weights": …, "gradients": …, "optimizer": …, "activations": …, "total": 前四項之和}`。
# 權重與梯度用張量自己的 `element_size()`；AdamW 狀態固定是 fp32（每個數 4 bytes）。
# 在 GPU 上，這個估計和 `torch.cuda.max_memory_allocated()` 的差距，來自 allocator 的對齊與暫存張量。

# %% nbgrader={"grade": false, "grade_id": "memory", "locked": false, "schema_version": 3, "solution": true, "task": false}
def activation_bytes(model: nn.Module, batch: dict) -> int:
    ### BEGIN SOLUTION
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**batch)
    return sum(seen.values())
    ### END SOLUTION


def training_memory(model: nn.Module, batch: dict) -> dict:
    ### BEGIN SOLUTION
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    gradients = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    optimizer = sum(2 * 4 * p.numel() for p in model.parameters() if p.requires_grad)
    activations = activation_bytes(model, batch)
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer, "activations": activations,
            "total": weights + gradients + optimizer + activations}
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "time-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 每步時間
#
# `seconds_per_step(model, batches, steps, warmup=1)`：建一個 `torch.optim.AdamW`（只放可訓練的參數），
# 先跑 `warmup` 步不計時（第一步常常比較慢：配置記憶體、選 kernel），再量 `steps` 步，每步是
# forward → `loss.backward()` → `step()` → `zero_grad()`，依序取 `batches`（不夠就從頭再來）。
# 用 `time.perf_counter()`，回傳 **每步的秒數**（平均或中位數都可以）。
# 在 GPU 上，停錶前要 `torch.cuda.synchronize()`：GPU 是非同步的，不同步就只量到送出指令的時間。

# %% nbgrader={"grade": false, "grade_id": "time", "locked": false, "schema_version": 3, "solution": true, "task": false}
def seconds_per_step(model: nn.Module, batches: list[dict], steps: int, warmup: int = 1) -> float:
    ### BEGIN SOLUTION
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times = []
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "accuracy-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 準確率
#
# `accuracy(model, batches)`：每個 batch 有 `input_ids`、`attention_mask`、`labels`。在 **eval 模式**
# （dropout 關掉）、`torch.no_grad()` 下算 logits，預測是最大 logit 的類別；回傳 **所有列** 中答對的比例
# （最後一個 batch 可能比較小：不要把每個 batch 的準確率平均）。

# %% nbgrader={"grade": false, "grade_id": "accuracy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def accuracy(model: nn.Module, batches: list[dict]) -> float:
    ### BEGIN SOLUTION
    model.eval()
    right, total = 0, 0
    with torch.no_grad():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            right += int((logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
    return right / total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-measure", "locked": true, "points": 13, "schema_version": 3, "solution": false, "task": false}
_model = load_model("bert", PROFILE)
for _name, _p in _model.named_parameters():
    _p.requires_grad_(_name.startswith("classifier"))
_trainable, _total = count_trainable(_model)
assert _trainable == sum(p.numel() for p in _model.classifier.parameters()), "可訓練的只有分類頭"
_batch = to_device({"input_ids": torch.randint(5, 100, (2, 12)), "attention_mask": torch.ones(2, 12, dtype=torch.long),
                    "labels": torch.tensor([0, 1])}, model_device(_model))
_memory = training_memory(_model, _batch)
assert set(_memory) == {"weights", "gradients", "optimizer", "activations", "total"}, "training_memory 的鍵不對"
assert _memory["activations"] > 0, "activation 為 0：forward 時是不是關掉了 autograd？"
assert _memory["total"] == sum(v for k, v in _memory.items() if k != "total")
assert 0.0 <= accuracy(_model, [_batch]) <= 1.0 and not _model.training, "accuracy 應在 eval 模式下計算"
assert seconds_per_step(_model, [_batch], steps=2) > 0

# %% [markdown] nbgrader={"grade": false, "grade_id": "row-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 5. 表的一列，和存下訓練好的參數
#
# `table_row(method, model, memory, seconds, eval_batches)` 回傳一個 dict（訓練之後呼叫）：
# - `"method"`：方法名稱；
# - `"trainable"`、`"total"`：`count_trainable(model)`；`"trainable_pct"`：`100 * trainable / total`；
# - `"memory_mib"`：`memory["total"]` 換成 MiB（除以 $2^{20}$）；
# - `"seconds_per_step"`：`seconds`（秒，不要換單位）；
# - `"accuracy"`：`accuracy(model, eval_batches)`（0 到 1）。
#
# `save_trainable(model, path)`：把 **訓練後**、`requires_grad` 的參數存成一個 safetensors 檔
# （鍵名與 `model.named_parameters()` 相同；張量要 `detach().contiguous()`）。grader 會把它們放回
# 一個新建的同方法模型，自己重算準確率，和你的表比對。

# %% nbgrader={"grade": false, "grade_id": "row", "locked": false, "schema_version": 3, "solution": true, "task": false}
def table_row(method: str, model: nn.Module, memory: dict, seconds: float, eval_batches: list[dict]) -> dict:
    ### BEGIN SOLUTION
    trainable, total = count_trainable(model)
    return {"method": method, "trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / total,
            "memory_mib": memory["total"] / 2**20, "seconds_per_step": float(seconds),
            "accuracy": accuracy(model, eval_batches)}
    ### END SOLUTION


def save_trainable(model: nn.Module, path: Path) -> None:
    ### BEGIN SOLUTION
    save_file({n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}, str(path))
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "plot-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 6. 一張圖
#
# `plot_comparison(rows)` 回傳一個 matplotlib `Figure`，只有一個 axes：
# - 每個方法一個點（`ax.scatter`）：x 是 `trainable_pct`、y 是 `accuracy`；
# - x 軸用 **對數刻度**（`ax.set_xscale("log")`）：各方法的可訓練比例差好幾個數量級；
# - 每個點旁邊用 `ax.annotate(方法名稱, (x, y))` 標上方法名稱；
# - 兩個軸都要有標籤（`set_xlabel`、`set_ylabel`）。

# %% nbgrader={"grade": false, "grade_id": "plot", "locked": false, "schema_version": 3, "solution": true, "task": false}
def plot_comparison(rows: list[dict]):
    ### BEGIN SOLUTION
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ys = [r["trainable_pct"] for r in rows], [r["accuracy"] for r in rows]
    ax.scatter(xs, ys)
    for row, x, y in zip(rows, xs, ys):
        ax.annotate(row["method"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (%)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("PEFT methods on one task")
    fig.tight_layout()
    return fig
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "run-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 7. 跑完整張表（不用改）
#
# 每個方法：從同一個 seed 建模型、在第一個 batch 上量記憶體、在模型的 **複本** 上量時間（量時間也會更新參數，
# 不能動到要訓練的那一份）、訓練、存參數、在 held-out 句子上算準確率。
#
# 讀表的時候注意：在這個只有兩層、hidden 64 的 tiny BERT 上，只改輸入或 key/value 的 prompt 類方法幾乎學不動，
# 而改權重或 bias 的方法學得很快。這不是程式錯誤：Lester et al.（2021）指出 prompt tuning 要到模型夠大才追上
# 全參數微調，P-tuning v2（Liu et al., 2022）把 prompt 放到每一層，正是為了讓中小模型也學得動。
# 記憶體那欄也值得一看：prompt 類方法把序列變長，activation 跟著變大。

# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 200 if PROFILE == "tiny" else 600
TIMED_STEPS = 5
LRS = {"full": 1e-3, "lora": 1e-2, "bottleneck": 1e-2, "prompt_tuning": 1e-1, "prefix_tuning": 1e-2,
       "p_tuning": 3e-2, "p_tuning_v2": 1e-1, "ia3": 3e-2, "bitfit": 1e-2}
if PROFILE != "tiny":
    LRS = {k: v / 10 for k, v in LRS.items()}

# Batches live where the models do (the CPU under tiny, the GPU on a full-profile runner).
train_batches, eval_batches = ([to_device(b, default_device(PROFILE)) for b in sentence_batches(
    load_course_dataset("sentiment", PROFILE, split=split), tokenizer, 16, text=["text"])] for split in ("train", "held_out"))

rows = []
for method in COMPARED:
    torch.manual_seed(0)
    model = compared_model(method, PROFILE)
    memory = training_memory(model, train_batches[0])
    seconds = seconds_per_step(copy.deepcopy(model), train_batches, TIMED_STEPS)
    torch.manual_seed(0)
    losses = train_steps(model, train_batches, MAX_STEPS, LRS[method])
    save_trainable(model, ARTIFACTS / "methods" / f"{method}.safetensors")
    rows.append(table_row(method, model, memory, seconds, eval_batches))
    print(f"{method:>14}: loss {losses[0]:.3f} -> {sum(losses[-10:]) / 10:.3f}, accuracy {rows[-1]['accuracy']:.3f}")

(ARTIFACTS / "comparison.json").write_text(json.dumps(rows, indent=2))
plot_comparison(rows).savefig(ARTIFACTS / "comparison.png", dpi=120)
print(f"\n{'method':>14} {'trainable %':>12} {'memory MiB':>11} {'s/step':>8} {'accuracy':>9}")
for r in rows:
    print(f"{r['method']:>14} {r['trainable_pct']:>12.4f} {r['memory_mib']:>11.2f} {r['seconds_per_step']:>8.4f} {r['accuracy']:>9.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-table", "locked": true, "points": 13, "schema_version": 3, "solution": false, "task": false}
assert [r["method"] for r in rows] == list(COMPARED), "每個方法一列，依 COMPARED 的順序"
assert {"method", "trainable", "total", "trainable_pct", "memory_mib", "seconds_per_step", "accuracy"} <= set(rows[0])
assert all((ARTIFACTS / "methods" / f"{m}.safetensors").is_file() for m in COMPARED), "每個方法都要存下參數"
assert (ARTIFACTS / "comparison.png").is_file()

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：它們在 **grader 選的** 模型與輸入上執行你的四把尺。`SlowStep` 是一個每步花
# 固定時間的假模型，grader 知道一步應該是幾秒。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
class _SlowBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, seconds):
        ctx.seconds = seconds
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        time.sleep(ctx.seconds)
        return grad, None


class SlowStep(nn.Module):
    """A model whose forward sleeps ``forward_s`` and backward ``backward_s``; its first call ``first_extra_s`` more."""

    def __init__(self, forward_s: float, backward_s: float, first_extra_s: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))
        self.frozen = nn.Parameter(torch.ones(1000), requires_grad=False)
        self.times = (forward_s, backward_s, first_extra_s)
        self.calls = 0

    def forward(self, input_ids, attention_mask=None, labels=None):
        forward_s, backward_s, first_extra_s = self.times
        time.sleep(forward_s + (first_extra_s if self.calls == 0 else 0.0))
        self.calls += 1
        out = _SlowBackward.apply(self.weight * input_ids.float().mean(), backward_s)
        return type("Output", (), {"loss": out.sum(), "logits": out})()


def count_on(method: str, unfreeze: list[str]) -> list[int]:
    """Your count_trainable on lab 1.1's `method`, with parameters named in `unfreeze` trainable too."""
    model = compared_model(method, PROFILE)
    for name, p in model.named_parameters():
        if any(u in name for u in unfreeze):
            p.requires_grad_(True)
    return [int(n) for n in count_trainable(model)]


def memory_on(method: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> dict:
    """Your training_memory on lab 1.1's `method` (seeded) and the grader's batch."""
    torch.manual_seed(0)
    model = compared_model(method, PROFILE)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    got = training_memory(model, to_device(batch, model_device(model)))
    return {k: int(v) for k, v in got.items()}


def seconds_on(forward_s: float, backward_s: float, first_extra_s: float, steps: int) -> float:
    """Your seconds_per_step on a SlowStep model (warmup=1)."""
    batch = {"input_ids": torch.ones(1, 2, dtype=torch.long), "labels": torch.zeros(1, dtype=torch.long)}
    return float(seconds_per_step(SlowStep(forward_s, backward_s, first_extra_s), [batch], steps))


def accuracy_on(method: str, seed: int, batches: list[dict]) -> list[float]:
    """Your accuracy, three times, on lab 1.1's `method` with its head drawn from `seed` (its bias splitting
    the rows in half) and dropout raised to 0.5, each time handed over in training mode."""
    model = compared_model_on_the_fence(method, seed, batches, PROFILE)
    batches = [to_device(b, model_device(model)) for b in batches]
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.5
    results = []
    for _ in range(3):
        model.train()
        results.append(float(accuracy(model, batches)))
    return results


def row_on(method: str, seconds: float, memory_total: int, batches: list[dict]) -> dict:
    """Your table_row for lab 1.1's `method` (seeded) with the grader's measurements and batches."""
    torch.manual_seed(0)
    model = compared_model(method, PROFILE)
    memory = {"weights": 0, "gradients": 0, "optimizer": 0, "activations": memory_total, "total": memory_total}
    row = table_row(method, model, memory, seconds, [to_device(b, model_device(model)) for b in batches])
    return {k: v if isinstance(v, str) else float(v) for k, v in row.items()}


def plot_on(rows_in: list[dict]) -> dict:
    """What your plot_comparison draws for the grader's rows: points, scales, labels, annotations."""
    fig = plot_comparison(rows_in)
    axes = fig.get_axes()
    ax = axes[0]
    points = [[float(x), float(y)] for c in ax.collections for x, y in c.get_offsets()]
    points += [[float(x), float(y)] for line in ax.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())]
    texts = [t.get_text() for t in ax.texts]
    info = {"axes": len(axes), "points": points, "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
            "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "texts": texts}
    plt.close(fig)
    return info
