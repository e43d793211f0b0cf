"""01-quantization: int8 absmax and zero-point, the NF4 codebook, block-wise NF4 and 4-bit
packing against bitsandbytes, the quantized linear layers against Linear8bitLt and Linear4bit."""
import math

import pytest
import torch
from torch import nn

from graders.plugin import say

NB = "01-quantization"
T_INT8 = {"zh": "int8：absmax 與 zero-point", "en": "int8: absmax and zero-point"}
H_INT8 = {"zh": "absmax：s = max|x|/127；zero-point：s = (max-min)/255、z = round(-min/s) - 128；per channel = 每一列一組。",
          "en": "absmax: s = max|x|/127; zero-point: s = (max-min)/255, z = round(-min/s) - 128; per channel = one per row."}
H_NF4 = {"zh": "linspace 用 float32、icdf 用 float64，轉回 float32 再排序並除以最大值。",
         "en": "linspace in float32, icdf in float64, back to float32, then sort and divide by the maximum."}
H_BLOCK = {"zh": "每 blocksize 個元素（攤平後）一個 absmax；取最近的碼值；打包時前一個碼放高 4 位，奇數個時補碼值 0 的索引。",
           "en": "One absmax per blocksize elements (flattened); the nearest code; pack the first code in the high nibble, "
                 "pad an odd count with the index of code 0."}
H_LAYER = {"zh": "Int8Linear：per-channel absmax；NF4Linear：blocksize 64 的 NF4；兩者都要加 bias。",
           "en": "Int8Linear: per-channel absmax; NF4Linear: NF4 with blocksize 64; both add the bias."}


def _rows_of_many_scales(rng, rows=7, cols=13):
    return torch.randn(rows, cols, generator=rng) * torch.logspace(-2, 1, rows)[torch.randperm(rows, generator=rng)][:, None]


def _reduce(x, per_channel, fn):
    return fn(x, dim=1, keepdim=True) if per_channel else fn(x)


@pytest.mark.check(points=2, cell="test-int8", title={"zh": "absmax int8 的碼與 scale", "en": "absmax int8 codes and scale"}, hint=H_INT8)
def test_absmax(submission, rng):
    x = _rows_of_many_scales(rng)
    for per_channel in (False, True):
        got = submission.nb(NB).call("absmax_quantize", x, per_channel)
        scale = _reduce(x.abs(), per_channel, torch.amax) / 127
        want = torch.clamp(torch.round(x / scale), -127, 127)
        assert got["q"].dtype == torch.int8, say(f"q 應為 int8，實際 {got['q'].dtype}。", f"q should be int8, got {got['q'].dtype}.")
        assert torch.allclose(got["scale"].float().reshape(scale.shape), scale, rtol=1e-6), say(
            f"per_channel={per_channel}：scale 應為 {scale.flatten()[:3].tolist()}…，實際 {got['scale'].flatten()[:3].tolist()}…",
            f"per_channel={per_channel}: scale should be {scale.flatten()[:3].tolist()}..., got {got['scale'].flatten()[:3].tolist()}...")
        wrong = int((got["q"].float() != want).sum())
        assert wrong == 0, say(f"per_channel={per_channel}：{wrong} 個碼與 round(x / s) 不同。",
                               f"per_channel={per_channel}: {wrong} codes differ from round(x / s).")


@pytest.mark.check(points=2, cell="test-int8", title={"zh": "zero-point int8 的碼、scale 與 zero", "en": "zero-point int8 codes, scale and zero"}, hint=H_INT8,
                   visibility="hidden")  # recomputes with the solution's own lines: they stay out of the student kit
def test_zeropoint(submission, rng):
    x = _rows_of_many_scales(rng) + 0.5
    for per_channel in (False, True):
        got = submission.nb(NB).call("zeropoint_quantize", x, per_channel)
        lo, hi = _reduce(x, per_channel, torch.amin), _reduce(x, per_channel, torch.amax)
        scale = (hi - lo) / 255
        zero = torch.round(-lo / scale) - 128
        want = torch.clamp(torch.round(x / scale) + zero, -128, 127)
        assert torch.allclose(got["scale"].float().reshape(scale.shape), scale, rtol=1e-6) and \
            torch.equal(got["zero"].float().reshape(zero.shape), zero), say(
                f"per_channel={per_channel}：scale 或 zero 不對（預期 zero {zero.flatten()[:3].tolist()}…，實際 {got['zero'].flatten()[:3].tolist()}…）。",
                f"per_channel={per_channel}: scale or zero is wrong (expected zero {zero.flatten()[:3].tolist()}..., got {got['zero'].flatten()[:3].tolist()}...).")
        wrong = int((got["q"].float() != want).sum())
        assert wrong == 0, say(f"per_channel={per_channel}：{wrong} 個碼與 clamp(round(x/s) + z) 不同。",
                               f"per_channel={per_channel}: {wrong} codes differ from clamp(round(x/s) + z).")


@pytest.mark.check(points=2, cell="test-int8", title={"zh": "int8 還原誤差不超過半個 scale", "en": "int8 reconstruction within half a scale"},
                   hint=H_INT8, visibility="hidden")
def test_int8_dequantize(submission, rng):
    x = _rows_of_many_scales(rng, rows=5, cols=21)
    nb = submission.nb(NB)
    for per_channel in (False, True):
        a = nb.call("absmax_quantize", x, per_channel)
        z = nb.call("zeropoint_quantize", x, per_channel)
        for name, x_hat, scale in (("absmax", nb.call("absmax_dequantize", a["q"], a["scale"]), a["scale"]),
                                   ("zero-point", nb.call("zeropoint_dequantize", z["q"], z["scale"], z["zero"]), z["scale"])):
            worst = float(((x_hat - x).abs() / scale.float()).max())
            assert x_hat.shape == x.shape and worst <= 0.5 + 1e-4, say(
                f"{name}、per_channel={per_channel}：最大還原誤差是 {worst:.2f} 個 scale（應 ≤ 0.5）。",
                f"{name}, per_channel={per_channel}: the largest reconstruction error is {worst:.2f} scales (should be <= 0.5).")


@pytest.mark.check(points=3, cell="test-nf4-code", title={"zh": "NF4 碼表與 bitsandbytes 逐位元相同", "en": "the NF4 codebook equals bitsandbytes' bit for bit"}, hint=H_NF4)
def test_nf4_code_equals_bitsandbytes(submission):
    import bitsandbytes.functional as F

    want = F.get_4bit_type("nf4", device="cpu").float()
    got = submission.nb(NB).call("nf4_code")
    assert tuple(got.shape) == (16,), say(f"應有 16 個碼值，實際形狀 {tuple(got.shape)}。", f"Expected 16 code values, got shape {tuple(got.shape)}.")
    diff = (got.float() - want).abs()
    assert torch.equal(got.float(), want), say(
        f"第 {int(diff.argmax())} 個碼值是 {float(got[diff.argmax()]):.9f}，bitsandbytes 是 {float(want[diff.argmax()]):.9f}。",
        f"Code value {int(diff.argmax())} is {float(got[diff.argmax()]):.9f}; bitsandbytes has {float(want[diff.argmax()]):.9f}.")


@pytest.mark.check(points=2, cell="test-blockwise", title={"zh": "4-bit 打包在奇數長度上來回一致", "en": "4-bit packing round-trips on odd lengths"}, hint=H_BLOCK)
def test_pack_roundtrip(submission, rng):
    nb = submission.nb(NB)
    for n in (1, 2 * int(torch.randint(3, 40, (1,), generator=rng)) + 1, 64):
        codes = torch.randint(0, 16, (n,), generator=rng, dtype=torch.uint8)
        packed = nb.call("pack_4bit", codes)
        assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(n / 2), say(
            f"{n} 個碼應打包成 {math.ceil(n / 2)} 個 uint8，實際 {packed.numel()} 個 {packed.dtype}。",
            f"{n} codes should pack into {math.ceil(n / 2)} uint8, got {packed.numel()} {packed.dtype}.")
        back = nb.call("unpack_4bit", packed, n)
        assert torch.equal(back.to(torch.uint8), codes), say(f"{n} 個碼 pack → unpack 後不同。", f"{n} codes differ after pack -> unpack.")


@pytest.mark.check(points=1, cell="test-blockwise", title={"zh": "單位矩陣完全還原", "en": "an identity matrix round-trips exactly"}, hint=H_BLOCK)
def test_identity_roundtrip(submission, rng):
    n = int(torch.randint(5, 20, (1,), generator=rng))
    got = submission.nb(NB).call("nf4_roundtrip", torch.eye(n), 64)["x_hat"]
    assert torch.equal(got.float(), torch.eye(n)), say(
        f"{n}×{n} 單位矩陣還原後差了 {float((got - torch.eye(n)).abs().max()):.3g}：0 與 1 都是碼值，應完全還原。",
        f"The {n}x{n} identity comes back off by {float((got - torch.eye(n)).abs().max()):.3g}; 0 and 1 are code values, so it must be exact.")


def _bnb_quantize(x, blocksize=64):
    import bitsandbytes.functional as F

    packed, state = F.quantize_4bit(x.contiguous(), blocksize=blocksize, quant_type="nf4", compress_statistics=False)
    return packed.flatten(), state.absmax


@pytest.mark.check(points=3, cell="test-blockwise", title={"zh": "NF4 碼與打包後的 byte 與 bitsandbytes 相同", "en": "NF4 codes and packed bytes equal bitsandbytes'"},
                   hint=H_BLOCK, visibility="hidden")
def test_packed_bytes_equal_bitsandbytes(submission, rng):
    nb = submission.nb(NB)
    odd = [2 * int(n) + 1 for n in torch.randint(2, 30, (2,), generator=rng)]  # an odd count: the last byte is padded
    x = torch.randn(*odd, generator=rng)
    want_packed, want_absmax = _bnb_quantize(x)
    got = nb.call("nf4_roundtrip", x, 64)
    assert torch.allclose(got["absmax"].float(), want_absmax), say("每個 block 的 absmax 與 bitsandbytes 不同。", "The per-block absmax differs from bitsandbytes'.")
    packed = nb.call("pack_4bit", got["codes"])
    wrong = int((packed.flatten() != want_packed).sum()) if packed.numel() == want_packed.numel() else -1
    assert wrong == 0, say(f"{tuple(x.shape)} 的打包結果有 {wrong} 個 byte 與 bitsandbytes 不同（-1：長度不同）。",
                           f"{wrong} packed bytes of a {tuple(x.shape)} tensor differ from bitsandbytes' (-1: the lengths differ).")


@pytest.mark.check(points=2, cell="test-blockwise", title={"zh": "NF4 重建誤差不超過參考解答", "en": "NF4 reconstruction error within the reference's"},
                   hint=H_BLOCK, visibility="hidden")
def test_reconstruction_error(submission, reference, rng):
    # Heavy tails (Student-t) and an odd element count, as real weight matrices have.
    chi2 = torch.randn(3, 37, 29, generator=rng).pow(2).sum(0) / 3
    x = torch.randn(37, 29, generator=rng) / chi2.sqrt() * 0.02
    got = submission.nb(NB).call("nf4_roundtrip", x, 64)["x_hat"]
    want = reference.nb(NB).call("nf4_roundtrip", x, 64)["x_hat"]
    got_mse, want_mse = float((got.float() - x).pow(2).mean()), float((want - x).pow(2).mean())
    assert got.shape == x.shape and got_mse <= want_mse * (1 + 1e-6), say(
        f"重建 MSE 是 {got_mse:.3e}，參考解答 {want_mse:.3e}（blocksize 64）。",
        f"Reconstruction MSE is {got_mse:.3e}; the reference reaches {want_mse:.3e} (blocksize 64).")


@pytest.mark.check(points=2, cell="test-blockwise", title={"zh": "NF4 還原與參考解答相同", "en": "NF4 dequantization equals the reference's"},
                   hint=H_BLOCK, visibility="hidden")
def test_dequantize_matches_reference(submission, reference, rng):
    x = torch.randn(3, 50, generator=rng) * torch.logspace(-1, 1, 3)[:, None]
    for blocksize in (64, 32):
        got = submission.nb(NB).call("nf4_roundtrip", x, blocksize)["x_hat"]
        want = reference.nb(NB).call("nf4_roundtrip", x, blocksize)["x_hat"]
        assert got.shape == want.shape and torch.allclose(got.float(), want, rtol=1e-5, atol=1e-6), say(
            f"blocksize={blocksize}：還原結果與參考解答最多差 {float((got.float() - want).abs().max()) if got.shape == want.shape else 'shape'}。",
            f"blocksize={blocksize}: the dequantized tensor differs from the reference's by up to "
            f"{float((got.float() - want).abs().max()) if got.shape == want.shape else 'shape'}.")


def _layer_inputs(rng, d_in=40, d_out=24):
    weight = torch.randn(d_out, d_in, generator=rng).half().float()  # bitsandbytes quantizes int8 from fp16
    return weight, torch.randn(d_out, generator=rng), torch.randn(6, d_in, generator=rng)


@pytest.mark.check(points=3, cell="test-layers", title={"zh": "Int8Linear 與 bnb.nn.Linear8bitLt 相同", "en": "Int8Linear equals bnb.nn.Linear8bitLt"},
                   hint=H_LAYER, visibility="hidden")
def test_int8_linear_equals_bitsandbytes(submission, rng):
    import bitsandbytes as bnb

    weight, bias, x = _layer_inputs(rng)
    ref = bnb.nn.Linear8bitLt(weight.shape[1], weight.shape[0], has_fp16_weights=False, threshold=0.0)
    ref.weight = bnb.nn.Int8Params(weight.clone(), requires_grad=False, has_fp16_weights=False).to("cpu")
    ref.bias = nn.Parameter(bias.clone())
    with torch.no_grad():
        want = ref(x)
    got = submission.nb(NB).call("int8_linear_output", weight, bias, x)
    # bitsandbytes rounds w * (127 / absmax); w / (absmax / 127) is as right, and the two differ
    # by one code where w sits on a rounding tie (7-9% of draws hold one): allow exactly that.
    scale = weight.abs().amax(dim=1, keepdim=True) / 127
    ratio = weight / scale
    on_tie = ((ratio - ratio.floor()) - 0.5).abs() < 1e-3
    slack = x.abs() @ (on_tie.float() * scale).T
    assert got.shape == want.shape, say(f"輸出形狀應為 {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                                        f"The output should have shape {tuple(want.shape)}, got {tuple(got.shape)}.")
    diff = float((got - want).abs().max())
    assert bool(((got - want).abs() <= slack + 1e-4 * float(want.abs().max())).all()), say(
        f"與 Linear8bitLt 的輸出最多差 {diff:.3g}。", f"The output differs from Linear8bitLt's by up to {diff:.3g}.")


@pytest.mark.check(points=3, cell="test-layers", title={"zh": "NF4Linear 與 bnb.nn.Linear4bit（nf4）相同", "en": "NF4Linear equals bnb.nn.Linear4bit (nf4)"},
                   hint=H_LAYER, visibility="hidden")
def test_nf4_linear_equals_bitsandbytes(submission, rng):
    import bitsandbytes as bnb

    from common_utils.quantization import safeguard_4bit

    weight, bias, x = _layer_inputs(rng, d_in=36, d_out=21)
    ref = bnb.nn.Linear4bit(weight.shape[1], weight.shape[0], compute_dtype=torch.float32, compress_statistics=False,
                            quant_type="nf4")
    ref.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False, compress_statistics=False, quant_type="nf4",
                                   blocksize=64).to("cpu")
    ref.bias = nn.Parameter(bias.clone())
    safeguard_4bit(ref)  # the AVX512-BF16 repacking would change the layout, not the result; keep one path
    with torch.no_grad():
        want = ref.eval()(x)
    got = submission.nb(NB).call("nf4_linear_output", weight, bias, x, 64)
    diff = float((got["y"] - want).abs().max())
    assert diff < 1e-4 * float(want.abs().max()), say(f"與 Linear4bit 的輸出最多差 {diff:.3g}。",
                                                      f"The output differs from Linear4bit's by up to {diff:.3g}.")
    want_packed, _ = _bnb_quantize(weight)
    assert torch.equal(got["packed"].flatten(), want_packed), say("NF4Linear 存的 byte 與 Linear4bit 不同。",
                                                                  "The bytes NF4Linear stores differ from Linear4bit's.")
