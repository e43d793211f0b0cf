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
# # 30-1 從零開始量化（Quantization from scratch）
#
# 量化把權重從 32-bit 浮點數換成少數幾個整數碼，加上一點「還原用」的統計量（scale、zero point、
# 每個 block 的 absmax）。本 notebook 依序實作：
# 1. **absmax int8**（對稱）與 **zero-point int8**（非對稱），各有 per-tensor 與 per-channel（每一列一個 scale）兩種；
# 2. **NF4**（Dettmers et al., 2023, *QLoRA*, arXiv:2305.14314）：以常態分布分位數構成的 16 個碼值，
#    每 64 個元素一個 absmax（block-wise）；兩個 4-bit 碼打包成一個 byte；
# 3. 用自己的量化寫 `Int8Linear`、`NF4Linear`，與 bitsandbytes 的 `Linear8bitLt`、`Linear4bit` 比較輸出。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math
import warnings

import torch
from torch import nn

warnings.filterwarnings("ignore", message=".*kernels.*")  # bitsandbytes' optional CPU kernels; not used here
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "int8-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. int8：absmax 與 zero-point
#
# **absmax（對稱）**：$s = \max|x| / 127$，$q = \mathrm{round}(x / s)$ 夾在 $[-127, 127]$，還原 $\hat x = q \cdot s$。
#
# **zero-point（非對稱）**：$s = (\max x - \min x) / 255$，$z = \mathrm{round}(-\min x / s) - 128$，
# $q = \mathrm{clamp}(\mathrm{round}(x / s) + z, -128, 127)$，還原 $\hat x = (q - z) \cdot s$。
#
# `per_channel=False` 時整個 tensor 共用一組統計量（純量 tensor）；`per_channel=True` 時輸入是 2-D，
# **每一列**（輸出 channel）一組，形狀 `(rows, 1)`，方便 broadcast。`q` 的 dtype 是 `torch.int8`，
# `zero` 是整數值（可以存成浮點 tensor）。

# %% nbgrader={"grade": false, "grade_id": "int8", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _reduce_max(x: torch.Tensor, per_channel: bool, fn) -> torch.Tensor:
    return fn(x, dim=1, keepdim=True) if per_channel else fn(x)


def absmax_quantize(x: torch.Tensor, per_channel: bool = False) -> dict:
    """{"q": int8 codes, "scale": max|x| / 127 per tensor or per row}."""
    ### BEGIN SOLUTION
    scale = _reduce_max(x.abs(), per_channel, torch.amax) / 127
    q = torch.clamp(torch.round(x / scale), -127, 127).to(torch.int8)
    return {"q": q, "scale": scale}
    ### END SOLUTION


def absmax_dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return q.float() * scale
    ### END SOLUTION


def zeropoint_quantize(x: torch.Tensor, per_channel: bool = False) -> dict:
    """{"q": int8 codes, "scale": (max - min) / 255, "zero": round(-min / scale) - 128}."""
    ### BEGIN SOLUTION
    lo, hi = _reduce_max(x, per_channel, torch.amin), _reduce_max(x, per_channel, torch.amax)
    scale = (hi - lo) / 255
    zero = torch.round(-lo / scale) - 128
    q = torch.clamp(torch.round(x / scale) + zero, -128, 127).to(torch.int8)
    return {"q": q, "scale": scale, "zero": zero}
    ### END SOLUTION


def zeropoint_dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return (q.float() - zero) * scale
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-int8", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
x = torch.randn(6, 10) * torch.logspace(-2, 1, 6)[:, None]  # rows of very different ranges
for per_channel in (False, True):
    a = absmax_quantize(x, per_channel)
    assert a["q"].dtype == torch.int8, "q 的 dtype 應為 torch.int8"
    err = (absmax_dequantize(a["q"], a["scale"]) - x).abs()
    assert torch.all(err <= a["scale"] / 2 + 1e-6), "absmax：還原誤差應不超過半個 scale"
    z = zeropoint_quantize(x, per_channel)
    err = (zeropoint_dequantize(z["q"], z["scale"], z["zero"]) - x).abs()
    assert torch.all(err <= z["scale"] / 2 + 1e-6), "zero-point：還原誤差應不超過半個 scale"
pt = (absmax_dequantize(**absmax_quantize(x)) - x).pow(2).mean()
pc = (absmax_dequantize(**absmax_quantize(x, True)) - x).pow(2).mean()
print(f"absmax MSE per tensor {pt:.2e}, per channel {pc:.2e}")
assert pc < pt, "這些列的範圍差很多：per-channel 的誤差應該比 per-tensor 小"

# %% [markdown] nbgrader={"grade": false, "grade_id": "nf4-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. NF4 碼表
#
# NF4 的 16 個碼值是標準常態分布的分位數，正負兩邊分開取，再正規化到 $[-1, 1]$，而且 **0 恰好是一個碼值**
# （權重裡的 0、以及 padding，都能無誤差表示）。bitsandbytes 的建法（QLoRA 論文附錄）：
# - `offset = 0.9677083`：最外側的分位數不取到 1，兩端才不會是 ±∞；
# - 正半邊 8 個：$\Phi^{-1}(p)$，$p$ 取 `torch.linspace(offset, 0.5, 9)` 的前 8 個；
# - 負半邊 7 個：$-\Phi^{-1}(p)$，$p$ 取 `torch.linspace(offset, 0.5, 8)` 的前 7 個；
# - 加上 0，共 16 個，排序後除以最大值。
#
# 要與 bitsandbytes **逐位元相同**：`linspace` 用預設的 float32，$\Phi^{-1}$ 用 float64 算
# （`torch.distributions.Normal` 的 `icdf`），轉回 float32 後再排序、正規化。

# %% nbgrader={"grade": false, "grade_id": "nf4-code", "locked": false, "schema_version": 3, "solution": true, "task": false}
def nf4_code() -> torch.Tensor:
    """The 16 NF4 code values, ascending, float32, from -1 to 1 with an exact 0."""
    ### BEGIN SOLUTION
    offset = 0.9677083
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    positive = normal.icdf(torch.linspace(offset, 0.5, 9)[:-1].double())
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8)[:-1].double())
    values = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).float().sort().values
    return values / values.max()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-nf4-code", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
code = nf4_code()
assert code.shape == (16,) and code.dtype == torch.float32, f"應為 16 個 float32，實際 {tuple(code.shape)} {code.dtype}"
assert code[0] == -1 and code[-1] == 1 and (code == 0).sum() == 1, "兩端應為 -1 與 1，且恰有一個 0"
assert torch.all(code[1:] > code[:-1]), "碼值應嚴格遞增"
print(code)

# %% [markdown] nbgrader={"grade": false, "grade_id": "blockwise-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. Block-wise NF4 量化與 4-bit 打包
#
# `nf4_quantize(x, blocksize)`：把 `x` 攤平（row-major），每 `blocksize` 個元素一個 block
# （最後一個 block 可以不滿），block 的 `absmax` = 該 block 的 $\max|x|$；每個元素除以自己 block 的
# absmax 後，取 **最近** 的碼值的索引（0–15，`torch.uint8`）。回傳 `{"codes": (numel,), "absmax": (n_blocks,)}`。
#
# `nf4_dequantize(codes, absmax, shape, blocksize)`：碼值 × 該 block 的 absmax，還原成 `shape`。
#
# `pack_4bit(codes)`：兩個索引放進一個 byte，**前一個放高 4 位**（`(a << 4) | b`）；元素個數是奇數時，
# 最後補上 **碼值 0 的索引**（與 bitsandbytes 相同）。`unpack_4bit(packed, n)` 反過來取回前 `n` 個索引。

# %% nbgrader={"grade": false, "grade_id": "blockwise", "locked": false, "schema_version": 3, "solution": true, "task": false}
def nf4_quantize(x: torch.Tensor, blocksize: int = 64) -> dict:
    ### BEGIN SOLUTION
    flat = x.flatten().float()
    n_blocks = math.ceil(flat.numel() / blocksize)
    padded = torch.zeros(n_blocks * blocksize)
    padded[: flat.numel()] = flat
    blocks = padded.view(n_blocks, blocksize)
    absmax = blocks.abs().amax(dim=1)
    normalized = (blocks / absmax.clamp_min(1e-12)[:, None]).flatten()[: flat.numel()]
    codes = (normalized[:, None] - nf4_code()[None, :]).abs().argmin(dim=1).to(torch.uint8)
    return {"codes": codes, "absmax": absmax}
    ### END SOLUTION


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, shape, blocksize: int = 64) -> torch.Tensor:
    ### BEGIN SOLUTION
    scales = absmax.repeat_interleave(blocksize)[: codes.numel()]
    return (nf4_code()[codes.long()] * scales).view(*shape)
    ### END SOLUTION


def pack_4bit(codes: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    codes = codes.flatten().to(torch.uint8)
    if codes.numel() % 2:
        zero_index = int((nf4_code() == 0).nonzero())
        codes = torch.cat([codes, torch.tensor([zero_index], dtype=torch.uint8)])
    return (codes[0::2] << 4) | codes[1::2]
    ### END SOLUTION


def unpack_4bit(packed: torch.Tensor, n: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    return torch.stack([packed >> 4, packed & 0x0F], dim=1).flatten()[:n]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-blockwise", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
eye = torch.eye(9)
q = nf4_quantize(eye, 64)
assert torch.equal(nf4_dequantize(q["codes"], q["absmax"], eye.shape, 64), eye), "單位矩陣應完全還原"
codes = torch.randint(0, 16, (11,), dtype=torch.uint8)
packed = pack_4bit(codes)
assert packed.dtype == torch.uint8 and packed.numel() == 6, "11 個碼應打包成 6 個 uint8"
assert torch.equal(unpack_4bit(packed, 11), codes), "pack → unpack 應取回原本的碼"
w = torch.randn(33, 17)
q = nf4_quantize(w, 64)
assert q["absmax"].numel() == math.ceil(w.numel() / 64), "block 數應為 ceil(numel / blocksize)"
mse = (nf4_dequantize(q["codes"], q["absmax"], w.shape, 64) - w).pow(2).mean()
print(f"NF4 MSE on N(0, 1): {mse:.4f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "layers-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 量化線性層，與 bitsandbytes 對照
#
# - `Int8Linear(linear)`：權重用 **per-channel absmax int8** 存（`self.q`、`self.scale`），forward 時還原成浮點再相乘
#   （bitsandbytes 在 CPU 上、`threshold=0` 的 `Linear8bitLt` 就是這樣算的）。
# - `NF4Linear(linear, blocksize=64)`：權重用你的 block-wise NF4 存成打包後的 `uint8`（`self.packed`）與 `self.absmax`，
#   forward 時 unpack、還原再相乘。
#
# 兩者都保留原本的 bias。下面的 grader 介面會把你的輸出與 `bnb.nn.Linear8bitLt`、`bnb.nn.Linear4bit`（nf4、不做 double
# quantization）在同一組權重與輸入上比較。
#
# ⚠️ 在支援 AVX512-BF16 的 CPU 上，`Linear4bit` 在 eval + no-grad 時會把權重重新排列成另一種 CPU 格式；
# 比對時請先設 `support_avx512bf16_for_cpu = False`（`common_utils.quantization.safeguard_4bit` 會幫你做）。

# %% nbgrader={"grade": false, "grade_id": "layers", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Int8Linear(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        ### BEGIN SOLUTION
        state = absmax_quantize(linear.weight.detach(), per_channel=True)
        self.register_buffer("q", state["q"])
        self.register_buffer("scale", state["scale"])
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return nn.functional.linear(x, absmax_dequantize(self.q, self.scale), self.bias)
        ### END SOLUTION


class NF4Linear(nn.Module):
    def __init__(self, linear: nn.Linear, blocksize: int = 64):
        super().__init__()
        ### BEGIN SOLUTION
        weight = linear.weight.detach()
        state = nf4_quantize(weight, blocksize)
        self.shape, self.blocksize = tuple(weight.shape), blocksize
        self.register_buffer("packed", pack_4bit(state["codes"]))
        self.register_buffer("absmax", state["absmax"])
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        codes = unpack_4bit(self.packed, math.prod(self.shape))
        weight = nf4_dequantize(codes, self.absmax, self.shape, self.blocksize)
        return nn.functional.linear(x, weight, self.bias)
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def int8_linear_output(weight, bias, x):
    """Your Int8Linear around (weight, bias), applied to x (used by the grader)."""
    with torch.no_grad():
        return Int8Linear(_linear(weight, bias))(x)


def nf4_linear_output(weight, bias, x, blocksize: int = 64):
    """Your NF4Linear around (weight, bias), applied to x, and its stored bytes (used by the grader)."""
    layer = NF4Linear(_linear(weight, bias), blocksize)
    with torch.no_grad():
        return {"y": layer(x), "packed": layer.packed, "absmax": layer.absmax}


def nf4_roundtrip(x, blocksize: int = 64):
    q = nf4_quantize(x, blocksize)
    return {**q, "x_hat": nf4_dequantize(q["codes"], q["absmax"], x.shape, blocksize)}


# %% nbgrader={"grade": true, "grade_id": "test-layers", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
import bitsandbytes as bnb

from common_utils.quantization import safeguard_4bit

layer = _linear(torch.randn(24, 40).half().float(), torch.randn(24))
x = torch.randn(5, 40)
ref8 = bnb.nn.Linear8bitLt(40, 24, has_fp16_weights=False, threshold=0.0)
ref8.weight = bnb.nn.Int8Params(layer.weight.detach().clone(), requires_grad=False, has_fp16_weights=False).to("cpu")
ref8.bias = nn.Parameter(layer.bias.detach().clone())
ref4 = bnb.nn.Linear4bit(40, 24, compute_dtype=torch.float32, compress_statistics=False, quant_type="nf4")
ref4.weight = bnb.nn.Params4bit(layer.weight.detach().clone(), requires_grad=False, compress_statistics=False,
                                quant_type="nf4", blocksize=64).to("cpu")
ref4.bias = nn.Parameter(layer.bias.detach().clone())
safeguard_4bit(ref4)
with torch.no_grad():
    d8 = (Int8Linear(layer)(x) - ref8(x)).abs().max()
    d4 = (NF4Linear(layer)(x) - ref4.eval()(x)).abs().max()
print(f"max |yours - bitsandbytes|: int8 {d8:.2e}, nf4 {d4:.2e}")
assert d8 < 1e-4 and d4 < 1e-4, "與 bitsandbytes 的輸出差太多"
