"""03-pruning: Wanda scores, exact per-row sparsity, no weight updates, 2:4, the magnitude
baseline, the pruned tiny Llama reloaded in the grader, and the effect table recomputed."""
import pytest
import torch
from safetensors.torch import load_file

from graders.plugin import say
from graders.suites.artifacts import copy_safe, read_json_artifact

NB = "03-pruning"
METHODS = ("magnitude", "wanda", "wanda-2of4")
H_PRUNE = {"zh": "分數 |W|·‖X‖；每一列各自剪掉分數最小的 int(sparsity·in_features) 個；留下的權重不要改。",
           "en": "Score |W| * ||X||; in each row prune the int(sparsity * in_features) lowest scores; leave kept weights as they are."}


def _draw(rng):
    rows, cols = int(torch.randint(5, 12, (1,), generator=rng)), 4 * int(torch.randint(5, 10, (1,), generator=rng))
    # Rows of very different scales: a per-tensor threshold would prune whole rows.
    W = torch.randn(rows, cols, generator=rng) * torch.logspace(-1, 1, rows)[torch.randperm(rows, generator=rng)][:, None]
    norm = torch.rand(cols, generator=rng) * 10 + 0.1
    return W, norm


def _expected(W, scores, sparsity):
    k = int(sparsity * W.shape[1])
    mask = torch.ones_like(W, dtype=torch.bool)
    mask.scatter_(1, torch.argsort(scores, dim=1)[:, :k], False)
    return mask


def _mask_report(got, W, want_mask):
    kept = got != 0
    per_row = (~kept).sum(dim=1).tolist()
    return per_row, int((kept != want_mask).sum())


@pytest.mark.check(points=1, cell="test-prune", title={"zh": "Wanda 分數 = |W|·‖X‖", "en": "Wanda score = |W| * ||X||"}, hint=H_PRUNE)
def test_wanda_scores(submission, rng):
    W, norm = _draw(rng)
    got = submission.nb(NB).call("wanda_scores", W, norm)
    assert torch.allclose(got, W.abs() * norm, rtol=1e-6), say("分數應為 |W| 乘上每個輸入 column 的 ‖X_j‖。",
                                                             "The score is |W| times each input column's ||X_j||.")


@pytest.mark.check(points=3, cell="test-prune", title={"zh": "Wanda：每一列剛好的稀疏度與正確的遮罩", "en": "Wanda: exact sparsity per row and the right mask"}, hint=H_PRUNE,
                   visibility="hidden")  # recomputes with the solution's own lines: they stay out of the student kit
def test_wanda_per_row(submission, rng):
    W, norm = _draw(rng)
    for sparsity in (0.5, float(torch.rand(1, generator=rng)) * 0.6 + 0.2):
        got = submission.nb(NB).call("wanda_prune", W, norm, sparsity)
        per_row, wrong = _mask_report(got, W, _expected(W, W.abs() * norm, sparsity))
        k = int(sparsity * W.shape[1])
        assert all(n == k for n in per_row) and wrong == 0, say(
            f"sparsity={sparsity:.3f}：每列應剪掉 {k} 個，實際 {per_row}；有 {wrong} 個位置與預期遮罩不同。",
            f"sparsity={sparsity:.3f}: each row should lose {k} weights, got {per_row}; {wrong} positions differ from the expected mask.")


@pytest.mark.check(points=2, cell="test-prune", title={"zh": "剪枝不更新留下的權重", "en": "pruning leaves the kept weights unchanged"}, hint=H_PRUNE,
                   visibility="hidden")
def test_no_weight_update(submission, rng):
    W, norm = _draw(rng)
    nb = submission.nb(NB)
    for name, got in (("wanda", nb.call("wanda_prune", W, norm, 0.4)), ("magnitude", nb.call("magnitude_prune", W, 0.4)),
                      ("2:4", nb.call("nm_prune", W, W.abs() * norm, 2, 4))):
        kept = got != 0
        assert torch.equal(got[kept], W[kept]), say(f"{name}：留下的權重被改動了（最大差 {float((got[kept] - W[kept]).abs().max()):.3g}）。",
                                                    f"{name}: kept weights were changed (by up to {float((got[kept] - W[kept]).abs().max()):.3g}).")


@pytest.mark.check(points=2, cell="test-prune", title={"zh": "magnitude baseline：每列的 |W| 最小者", "en": "magnitude baseline: the smallest |W| per row"}, hint=H_PRUNE,
                   visibility="hidden")
def test_magnitude(submission, rng):
    W, _ = _draw(rng)
    got = submission.nb(NB).call("magnitude_prune", W, 0.5)
    per_row, wrong = _mask_report(got, W, _expected(W, W.abs(), 0.5))
    assert wrong == 0, say(f"有 {wrong} 個位置與每列 |W| 最小者的遮罩不同（每列剪掉 {per_row}）。",
                           f"{wrong} positions differ from the per-row smallest-|W| mask (pruned per row: {per_row}).")


@pytest.mark.check(points=2, cell="test-prune", title={"zh": "2:4：每連續 4 個留下分數最大的 2 個", "en": "2:4: the 2 highest scores of every 4"}, hint=H_PRUNE,
                   visibility="hidden")
def test_two_of_four(submission, rng):
    W, norm = _draw(rng)
    scores = W.abs() * norm
    got = submission.nb(NB).call("nm_prune", W, scores, 2, 4)
    groups = scores.reshape(W.shape[0], -1, 4)
    want = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, groups.topk(2, dim=2).indices, True).reshape(W.shape)
    wrong = int(((got != 0) != want).sum())
    assert wrong == 0, say(f"有 {wrong} 個位置與 2:4 遮罩不同。", f"{wrong} positions differ from the 2:4 mask.")


def _pruned(handle, method, grader_tmp):
    path = handle.artifact_path(f"artifacts/pruned-{method}.safetensors")
    if not path.is_file():
        raise AssertionError(say(f"找不到 artifacts/pruned-{method}.safetensors。", f"artifacts/pruned-{method}.safetensors is missing."))
    folder = grader_tmp / f"{id(handle)}"
    if not (folder / path.name).is_file():
        copy_safe(path.parent, folder)
    return load_file(str(folder / path.name))


@pytest.mark.check(points=2, cell="test-prune-model", title={"zh": "剪枝後的 tiny Llama：逐列稀疏度與原權重", "en": "pruned tiny Llama: per-row sparsity, original weights"},
                   hint=H_PRUNE)
def test_model_sparsity(submission, llama, grader_tmp):
    from common_utils.compression import decoder_linears

    for method in METHODS:
        weights = _pruned(submission.nb(NB), method, grader_tmp)
        for name, layer in decoder_linears(llama).items():
            W, got = layer.weight.detach().float(), weights.get(f"{name}.weight")
            assert got is not None and got.shape == W.shape, say(f"{method}：{name} 不存在或形狀不對。", f"{method}: {name} is missing or misshapen.")
            zeros = (got == 0).sum(dim=1)
            want = W.shape[1] // 2
            pattern_ok = bool(torch.all((got.reshape(W.shape[0], -1, 4) == 0).sum(dim=2) == 2)) if method == "wanda-2of4" else True
            assert torch.all(zeros == want) and pattern_ok, say(f"{method}：{name} 每列的 0 的個數是 {sorted(set(zeros.tolist()))}，應為 {want}。",
                                                                f"{method}: {name} has {sorted(set(zeros.tolist()))} zeros per row; {want} expected.")
            kept = got != 0
            assert torch.equal(got[kept], W[kept]), say(f"{method}：{name} 留下的權重被改動了。", f"{method}: kept weights of {name} were changed.")


@pytest.mark.check(points=3, cell="test-prune-model", title={"zh": "Wanda 遮罩與 grader 由校準資料重算的相同", "en": "the Wanda mask equals the one the grader recomputes from calibration data"},
                   hint={"zh": "‖X_j‖ 是該層輸入第 j 個 feature 在所有校準 token 上的 L2 norm（不是平方、不是平均）。",
                         "en": "||X_j|| is the L2 norm of input feature j over every calibration token (not squared, not a mean)."},
                   visibility="hidden")
def test_model_wanda_mask(submission, llama, profile, grader_tmp):
    from common_utils.compression import calibration_ids, decoder_linears, linear_inputs

    inputs = linear_inputs(llama, calibration_ids(profile))
    weights = _pruned(submission.nb(NB), "wanda", grader_tmp)
    for name, layer in decoder_linears(llama).items():
        W = layer.weight.detach().float()
        want = _expected(W, W.abs() * inputs[name].norm(dim=0), 0.5)
        agree = float(((weights[f"{name}.weight"] != 0) == want).float().mean())
        assert agree >= 0.999, say(f"{name}：遮罩只有 {agree:.1%} 與 grader 重算的相同。",
                                   f"{name}: only {agree:.1%} of the mask matches the grader's recomputation.")


def _perplexity(weights, profile):
    from common_utils.compression import heldout_ids, perplexity
    from common_utils.models import load_model

    model = load_model("llama", profile)
    model.load_state_dict(weights, strict=False)
    return perplexity(model, heldout_ids(profile))


@pytest.mark.check(points=3, cell="test-prune-model", title={"zh": "剪枝後的 perplexity 與參考解答相近", "en": "perplexity after pruning close to the reference's"},
                   hint=H_PRUNE, visibility="hidden")
def test_model_perplexity(submission, reference, assignment, profile, grader_tmp):
    rtol = assignment.settings["targets"]["perplexity_rtol"]
    for method in ("wanda", "wanda-2of4"):
        got = _perplexity(_pruned(submission.nb(NB), method, grader_tmp), profile)
        want = _perplexity(_pruned(reference.nb(NB), method, grader_tmp), profile)
        assert abs(got - want) <= rtol * want, say(f"{method}：保留文字的 perplexity {got:.2f}，參考解答 {want:.2f}。",
                                                   f"{method}: held-out perplexity {got:.2f}; the reference's {want:.2f}.")


@pytest.mark.check(points=3, cell="test-effect", title={"zh": "效果表的每個數字（grader 重算）", "en": "every figure of the effect table (recomputed by the grader)"},
                   hint={"zh": "每個方法一列：method、perplexity、size_bytes、loaded_bytes；依 perplexity 由小到大。",
                         "en": "One row per method: method, perplexity, size_bytes, loaded_bytes; ascending perplexity."})
def test_effect_table(submission, profile, grader_tmp):
    from common_utils.compression import heldout_ids, loaded_bytes, perplexity, storage_bytes
    from common_utils.models import load_model

    rows = read_json_artifact(submission.nb(NB), "artifacts/effect.json")
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows), say("effect.json 應是一個 dict 的 list。", "effect.json should be a list of dicts.")
    table = {r.get("method"): r for r in rows}
    missing = {"base", "nf4", "gptq-4bit", *METHODS} - set(table)
    assert not missing, say(f"效果表少了 {sorted(missing)}。", f"The effect table lacks {sorted(missing)}.")
    ppls = [r["perplexity"] for r in rows]
    assert ppls == sorted(ppls), say("請依 perplexity 由小到大排序。", "Sort the rows by ascending perplexity.")
    base = load_model("llama", profile)
    held = heldout_ids(profile)
    weights = {"gptq-4bit": None, **{m: _pruned(submission.nb(NB), m, grader_tmp) for m in METHODS}}
    path = submission.nb(NB).artifact_path("artifacts/gptq-weights.safetensors")
    weights["gptq-4bit"] = load_file(str(copy_safe(path.parent, grader_tmp / "gptq") / path.name))
    nf4 = load_model("llama", profile, quantization="nf4")
    want = {"base": perplexity(base, held), "nf4": perplexity(nf4, held), **{m: _perplexity(w, profile) for m, w in weights.items()}}
    for method, ppl in want.items():
        got = table[method]
        size = storage_bytes(base, "fp32" if method == "base" else method)
        memory = loaded_bytes(nf4 if method == "nf4" else base)  # the others are loaded back as dense fp32
        figures = (got.get("perplexity"), got.get("size_bytes"), got.get("loaded_bytes"))
        assert abs(figures[0] - ppl) <= 1e-3 * ppl and figures[1:] == (size, memory), say(
            f"{method}：表上 (perplexity, size_bytes, loaded_bytes) = {figures}；grader 重算 ({ppl:.3f}, {size}, {memory})。",
            f"{method}: the table says (perplexity, size_bytes, loaded_bytes) = {figures}; the grader gets ({ppl:.3f}, {size}, {memory}).")


@pytest.mark.check(points=1, cell="test-effect", title={"zh": "效果圖存成 PNG", "en": "the effect plot saved as PNG"},
                   hint={"zh": "用 matplotlib 的 savefig 存到 artifacts/effect.png。", "en": "Save it with matplotlib's savefig to artifacts/effect.png."})
def test_effect_plot(submission):
    path = submission.nb(NB).artifact_path("artifacts/effect.png")
    ok = path.is_file() and not path.is_symlink() and path.stat().st_size < 16 * 2**20
    assert ok and path.open("rb").read(8) == b"\x89PNG\r\n\x1a\n", say("artifacts/effect.png 不存在或不是 PNG。",
                                                                        "artifacts/effect.png is missing or not a PNG.")
