"""02-gptq: the Hessian, GPTQ against round-to-nearest and the reference on grader-drawn layers,
and the student's quantized tiny Llama checked layer by layer on held-out activations."""
import math

import pytest
import torch
from safetensors.torch import load_file

from graders.plugin import say
from graders.suites.artifacts import copy_safe, read_json_artifact

NB = "02-gptq"
WEIGHTS = "artifacts/gptq-weights.safetensors"
H_GPTQ = {"zh": "err = (w_i - q_i) / Hinv[i, i]，W[:, i:] -= err ⊗ Hinv[i, i:]；act_order 要排回原順序；group 的 scale 用已更新的 W 算。",
          "en": "err = (w_i - q_i) / Hinv[i, i], W[:, i:] -= err (x) Hinv[i, i:]; undo the act_order permutation; "
                "group scales come from the updated W."}
CONFIGS = ((-1, False), (16, False), (16, True))


def _grid_size(Q: torch.Tensor, bits: int, group_size: int) -> int:
    """The most distinct values one row may hold: 2^bits per group."""
    groups = 1 if group_size == -1 else math.ceil(Q.shape[1] / group_size)
    return 2 ** bits * groups


def _draw(correlated_inputs, rng, rows=24, cols=48):
    return torch.randn(rows, cols, generator=rng), *correlated_inputs(rng, 512, cols)


@pytest.mark.check(points=2, cell="test-gptq", title={"zh": "Hessian = 2/n · XᵀX", "en": "Hessian = 2/n X^T X"},
                   hint={"zh": "X 的形狀是 (tokens, in_features)；結果是 in_features × in_features。",
                         "en": "X is (tokens, in_features); the result is in_features x in_features."})
def test_hessian(submission, rng):
    X = torch.randn(int(torch.randint(50, 200, (1,), generator=rng)), 12, generator=rng)
    got = submission.nb(NB).call("hessian", X)
    want = 2 / X.shape[0] * X.T.double() @ X.double()
    assert tuple(got.shape) == (12, 12) and torch.allclose(got.double(), want, rtol=1e-4, atol=1e-5), say(
        f"H 應為 2/n · XᵀX（n = {X.shape[0]}）；形狀 {tuple(got.shape)}，最大差 "
        f"{float((got.double() - want).abs().max()) if got.shape == want.shape else '—'}。",
        f"H should be 2/n X^T X (n = {X.shape[0]}); shape {tuple(got.shape)}, largest difference "
        f"{float((got.double() - want).abs().max()) if got.shape == want.shape else '-'}.")


@pytest.mark.check(points=1, cell="test-gptq", title={"zh": "round-to-nearest 與參考解答相同", "en": "round-to-nearest equals the reference"},
                   hint={"zh": "lo = min(min w, 0)、hi = max(max w, 0)、scale = (hi-lo)/maxq、zero = round(-lo/scale)，每組各自算。",
                         "en": "lo = min(min w, 0), hi = max(max w, 0), scale = (hi-lo)/maxq, zero = round(-lo/scale), per group."},
                   visibility="hidden")
def test_rtn_matches_reference(submission, reference, rng):
    W = torch.randn(10, 40, generator=rng) + 0.3
    for bits, group_size in ((4, -1), (3, 8)):
        got = submission.nb(NB).call("rtn_quantize", W, bits, group_size)
        want = reference.nb(NB).call("rtn_quantize", W, bits, group_size)
        assert torch.allclose(got, want, atol=1e-6), say(f"bits={bits}、group_size={group_size}：與參考解答不同。",
                                                         f"bits={bits}, group_size={group_size}: differs from the reference.")


@pytest.mark.check(points=3, cell="test-gptq", title={"zh": "GPTQ 在保留資料上不輸 round-to-nearest", "en": "GPTQ is no worse than round-to-nearest on held-out data"},
                   hint=H_GPTQ,
                   visibility="hidden")  # compares with the reference: no reference in a student kit
def test_beats_rtn(submission, reference, rng, correlated_inputs, output_error):
    W, X_calib, X_held = _draw(correlated_inputs, rng)
    for group_size, act_order in CONFIGS:
        Q = submission.nb(NB).call("gptq_from_activations", W, X_calib, 4, group_size, act_order)
        rtn = output_error(W, reference.nb(NB).call("rtn_quantize", W, 4, group_size), X_held)
        got = output_error(W, Q, X_held)
        assert got <= rtn, say(f"group_size={group_size}、act_order={act_order}：GPTQ 誤差 {got:.5f}，RTN {rtn:.5f}。",
                               f"group_size={group_size}, act_order={act_order}: GPTQ error {got:.5f}, RTN {rtn:.5f}.")


@pytest.mark.check(points=3, cell="test-gptq", title={"zh": "GPTQ 與參考解答的誤差相近、權重在格點上", "en": "GPTQ close to the reference, weights on the grid"},
                   hint=H_GPTQ, visibility="hidden")
def test_matches_reference(submission, reference, assignment, rng, correlated_inputs, output_error):
    rtol = assignment.settings["targets"]["gptq_draw_rtol"]
    W, X_calib, X_held = _draw(correlated_inputs, rng, rows=20, cols=32)
    for group_size, act_order in CONFIGS:
        got = submission.nb(NB).call("gptq_from_activations", W, X_calib, 4, group_size, act_order)
        want = reference.nb(NB).call("gptq_from_activations", W, X_calib, 4, group_size, act_order)
        distinct = max(len(row.unique()) for row in got)
        assert distinct <= _grid_size(got, 4, group_size), say(
            f"group_size={group_size}：一列有 {distinct} 個不同的值，4-bit 最多 {_grid_size(got, 4, group_size)} 個。",
            f"group_size={group_size}: a row holds {distinct} distinct values; 4-bit allows at most {_grid_size(got, 4, group_size)}.")
        e_got, e_want = output_error(W, got, X_held), output_error(W, want, X_held)
        assert abs(e_got - e_want) <= rtol * e_want, say(
            f"group_size={group_size}、act_order={act_order}：誤差 {e_got:.5f}，參考解答 {e_want:.5f}。",
            f"group_size={group_size}, act_order={act_order}: error {e_got:.5f}, the reference's {e_want:.5f}.")


def _layer_errors(handle, model, held_inputs, grader_tmp, tag, output_error):
    from common_utils.compression import decoder_linears

    path = handle.artifact_path(WEIGHTS)
    if not path.is_file():
        raise AssertionError(say(f"找不到 {WEIGHTS}。", f"{WEIGHTS} is missing."))
    safe = copy_safe(path.parent, grader_tmp / tag) / path.name
    weights = load_file(str(safe))
    errors = {}
    for name, layer in decoder_linears(model).items():
        Q = weights.get(f"{name}.weight")
        W = layer.weight.detach().float()
        if Q is None or Q.shape != W.shape:
            raise AssertionError(say(f"{name}：量化後的權重不存在或形狀不對。", f"{name}: the quantized weight is missing or has the wrong shape."))
        errors[name] = (Q.float(), output_error(W, Q.float(), held_inputs[name]))
    return errors


@pytest.fixture
def held_inputs(llama, profile):
    from common_utils.compression import heldout_ids, linear_inputs

    return linear_inputs(llama, heldout_ids(profile))


@pytest.mark.check(points=2, cell="test-quantize-model", title={"zh": "tiny Llama 的每一層都在 4-bit 格點上", "en": "every tiny Llama layer is on the 4-bit grid"},
                   hint=H_GPTQ, visibility="hidden")
def test_model_on_grid(submission, reference, llama, held_inputs, grader_tmp, output_error):
    config = read_json_artifact(reference.nb(NB), "artifacts/gptq-config.json")
    for name, (Q, _) in _layer_errors(submission.nb(NB), llama, held_inputs, grader_tmp, "s", output_error).items():
        limit = _grid_size(Q, config["bits"], config["group_size"])
        distinct = max(len(row.unique()) for row in Q)
        assert distinct <= limit, say(f"{name}：一列有 {distinct} 個不同的值（上限 {limit}）：權重真的量化了嗎？",
                                      f"{name}: a row holds {distinct} distinct values (at most {limit}): is it really quantized?")


@pytest.mark.check(points=2, cell="test-quantize-model", title={"zh": "每一層在保留資料上不輸 round-to-nearest", "en": "every layer no worse than round-to-nearest on held-out data"},
                   hint=H_GPTQ,
                   visibility="hidden")  # compares with the reference: no reference in a student kit
def test_model_beats_rtn(submission, reference, assignment, llama, held_inputs, grader_tmp, output_error):
    config = read_json_artifact(reference.nb(NB), "artifacts/gptq-config.json")
    factor = assignment.settings["targets"]["gptq_vs_rtn"]
    from common_utils.compression import decoder_linears

    layers = decoder_linears(llama)
    worse = []
    for name, (_, err) in _layer_errors(submission.nb(NB), llama, held_inputs, grader_tmp, "s", output_error).items():
        W = layers[name].weight.detach().float()
        rtn = output_error(W, reference.nb(NB).call("rtn_quantize", W, config["bits"], config["group_size"]), held_inputs[name])
        if err > factor * rtn:
            worse.append(f"{name} {err:.5f} > {rtn:.5f}")
    assert not worse, say("這些層的誤差比 RTN 大：" + "; ".join(worse), "These layers are worse than RTN: " + "; ".join(worse))


@pytest.mark.check(points=2, cell="test-quantize-model", title={"zh": "每一層的誤差接近參考解答", "en": "every layer's error close to the reference's"},
                   hint=H_GPTQ, visibility="hidden")
def test_model_near_reference(submission, reference, assignment, llama, held_inputs, grader_tmp, output_error):
    rtol = assignment.settings["targets"]["gptq_vs_reference_rtol"]
    got = _layer_errors(submission.nb(NB), llama, held_inputs, grader_tmp, "s", output_error)
    want = _layer_errors(reference.nb(NB), llama, held_inputs, grader_tmp, "r", output_error)
    off = [f"{name} {got[name][1]:.5f} vs {e:.5f}" for name, (_, e) in want.items() if abs(got[name][1] - e) > rtol * e]
    assert not off, say("這些層的誤差與參考解答差太多：" + "; ".join(off), "These layers' errors are far from the reference's: " + "; ".join(off))


@pytest.mark.gpu
@pytest.mark.check(points=3, title={"zh": "與現成函式庫的 GPTQ 比較（GPU）", "en": "against an established library's GPTQ (GPU)"},
                   hint={"zh": "同一層、同一組校準資料：誤差不應比函式庫的 GPTQ 大太多。",
                         "en": "Same layer, same calibration data: the error should not be much larger than the library's."},
                   timeout=600)
def test_against_library(submission, assignment, llama, profile, output_error):
    """On GPU runners: gptqmodel's GPTQ on the first attention projection of the profile's Llama,
    against the student's on the same calibration inputs (the library is in the runners' own
    environment; it is not a dependency of this repository)."""
    from gptqmodel.quantization.gptq import GPTQ  # noqa: F401  (fails loudly where the runner lacks it)
    from gptqmodel import QuantizeConfig

    from common_utils.compression import calibration_ids, decoder_linears, heldout_ids, linear_inputs

    name = next(iter(decoder_linears(llama)))
    layer = decoder_linears(llama)[name].cuda()
    calib = linear_inputs(llama, calibration_ids(profile))[name]
    held = linear_inputs(llama, heldout_ids(profile))[name]
    W = layer.weight.detach().float().cpu()
    gptq = GPTQ(layer, qcfg=QuantizeConfig(bits=4, group_size=128, desc_act=True))
    gptq.add_batch(calib.cuda().unsqueeze(0).to(layer.weight.dtype), None)
    library = gptq.quantize()[0].float().cpu()
    ours = submission.nb(NB).call("gptq_from_activations", W, calib, 4, 128, True, timeout=600)
    factor = assignment.settings["targets"]["gptq_vs_library"]
    e_ours, e_lib = output_error(W, ours, held), output_error(W, library, held)
    assert e_ours <= factor * e_lib, say(f"誤差 {e_ours:.5f}，函式庫 {e_lib:.5f}。", f"Error {e_ours:.5f}; the library's {e_lib:.5f}.")
