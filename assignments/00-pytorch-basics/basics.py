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
# # 00 PyTorch 基礎
#
# 這份暖身作業有三個部分：張量運算、一個小模型、計算參數量。
# 請只在標示 `YOUR CODE HERE` 的地方作答，並刪掉 `raise NotImplementedError()`。
# 測試 cell 是鎖定的：評分時會從原始檔還原。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import torch
from torch import nn

from common_utils.profiles import get_profile

print("profile:", get_profile())
print("torch:", torch.__version__, "| CUDA:", torch.cuda.is_available())
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "standardize-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 張量運算：standardize
#
# 實作 `standardize(x, eps=1e-5)`：沿 **最後一個維度** 減去平均、除以標準差，
# 標準差用母體變異數（`unbiased=False`），並在開根號前加上 `eps`：
#
# $$ y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} $$
#
# 這正是 LayerNorm 在乘上 weight、加上 bias 之前做的事。

# %% nbgrader={"grade": false, "grade_id": "standardize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Standardize x along its last dimension (population variance, eps inside the root)."""
    ### BEGIN SOLUTION
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-standardize", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
x = torch.randn(4, 16)
y = standardize(x)
assert y.shape == x.shape, f"形狀應為 {tuple(x.shape)}，實際 {tuple(y.shape)}"
assert torch.allclose(y.mean(dim=-1), torch.zeros(4), atol=1e-5), "每一列的平均應接近 0"
### BEGIN HIDDEN TESTS
assert torch.allclose(y.var(dim=-1, unbiased=False), torch.ones(4), atol=1e-3)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "mlp-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 一個小模型：TinyMLP
#
# 寫出 `TinyMLP(d_in, d_hidden, d_out)`：`fc1 = Linear(d_in, d_hidden)` → ReLU →
# `fc2 = Linear(d_hidden, d_out)`。屬性名稱請用 `fc1`、`fc2`，grader 會讀取你模型的權重。
# 下面的 cell 會建立 `model = TinyMLP(8, 16, 2)`，`tiny_mlp_logits(x)` 回傳它的輸出。

# %% nbgrader={"grade": false, "grade_id": "tiny-mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TinyMLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.fc2(torch.relu(self.fc1(x)))
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "tiny-mlp-build", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = TinyMLP(8, 16, 2)


def tiny_mlp_logits(x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


print(model)

# %% nbgrader={"grade": true, "grade_id": "test-tiny-mlp", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
out = tiny_mlp_logits(torch.randn(5, 8))
assert out.shape == (5, 2), f"輸出形狀應為 (5, 2)，實際 {tuple(out.shape)}"
assert hasattr(model, "fc1") and hasattr(model, "fc2"), "請用 fc1、fc2 作為兩層的名稱"

# %% [markdown] nbgrader={"grade": false, "grade_id": "params-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 計算參數量
#
# 一個 `Linear(d_in, d_out)` 有 `d_in × d_out` 個 weight，再加上（若有）`d_out` 個 bias。
# 1. 寫 `linear_param_count(d_in, d_out, bias=True)`，只用算術，不要建立模型。
# 2. 寫 `count_parameters(model, trainable_only=False)`：加總模型所有參數的元素個數；
#    `trainable_only=True` 時只算 `requires_grad` 的參數。之後的 LoRA 作業就靠它。

# %% nbgrader={"grade": false, "grade_id": "param-count", "locked": false, "schema_version": 3, "solution": true, "task": false}
def linear_param_count(d_in: int, d_out: int, bias: bool = True) -> int:
    ### BEGIN SOLUTION
    return d_in * d_out + (d_out if bias else 0)
    ### END SOLUTION


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    ### BEGIN SOLUTION
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "param-count-use", "locked": true, "schema_version": 3, "solution": false, "task": false}
n_params = count_parameters(model)
model.fc1.requires_grad_(False)
n_trainable = count_parameters(model, trainable_only=True)
model.fc1.requires_grad_(True)
print(f"TinyMLP: {n_params:,} parameters, {n_trainable:,} trainable with fc1 frozen")

# %% nbgrader={"grade": true, "grade_id": "test-param-count", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert linear_param_count(8, 16) == 8 * 16 + 16, "Linear(8, 16) 應有 8×16 個 weight 加 16 個 bias"
assert isinstance(n_params, int), "count_parameters 應回傳 int"
### BEGIN HIDDEN TESTS
assert linear_param_count(3, 5, bias=False) == 15
assert n_trainable == linear_param_count(16, 2)
### END HIDDEN TESTS
