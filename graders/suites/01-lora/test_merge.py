"""04-merge-and-deploy: W + (alpha/r) B A, a plain model, safetensors, same base, full precision."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites.artifacts import copy_safe, probe_ids
from graders.suites.peft_tester import require_merged_equal

NB = "04-merge-and-deploy"
MERGED = "artifacts/merged"


@pytest.fixture
def merged_model(submission, grader_tmp):
    from transformers import AutoModelForCausalLM

    folder = copy_safe(submission.nb(NB).artifact_path(MERGED), grader_tmp / "merged")
    if not list(folder.glob("*.safetensors")):
        raise AssertionError(say("artifacts/merged/ 裡沒有 .safetensors 檔。", "artifacts/merged/ holds no .safetensors file."))
    try:
        return AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, trust_remote_code=False).eval()
    except Exception as err:
        raise AssertionError(say(f"合併後的模型無法用 AutoModelForCausalLM 載入：{type(err).__name__}: {str(err)[:200]}",
                                 f"The merged model does not load with AutoModelForCausalLM: {type(err).__name__}: {str(err)[:200]}")) from None


MERGE_WRONG = {
    "alpha": ("用了 alpha，應為 alpha / r。", "It scales by alpha; it should be alpha / r."),
    "alpha_floor": ("用了整數除法 alpha // r，應為 alpha / r。", "It uses integer division alpha // r; use alpha / r."),
    "no_weight": ("少了原本的 W：結果應為 W + (alpha/r)·B A。", "The original W is missing: the result is W + (alpha/r) B A."),
    "minus": ("符號錯了：是加上 (alpha/r)·B A。", "Wrong sign: (alpha/r) B A is added."),
}


def _merge_case(rng):
    d_out, d_in = int(torch.randint(5, 12, (1,), generator=rng)), int(torch.randint(4, 10, (1,), generator=rng))
    r = int(torch.randint(2, 5, (1,), generator=rng))
    alpha = r * int(torch.randint(1, 4, (1,), generator=rng)) + 1  # r does not divide alpha
    W, A, B = torch.randn(d_out, d_in, generator=rng), torch.randn(r, d_in, generator=rng), torch.randn(d_out, r, generator=rng)
    variants = {"right": W + alpha / r * B @ A, "alpha": W + alpha * B @ A, "alpha_floor": W + (alpha // r) * B @ A,
                "no_weight": alpha / r * B @ A, "minus": W - alpha / r * B @ A}
    return (W, A, B, alpha, r), variants


def _diagnose_merge(got, variants):
    want = variants["right"]
    if tuple(got.shape) != tuple(want.shape):
        raise Diagnosed(say(f"合併後形狀應為 {tuple(want.shape)}（與 W 相同），實際 {tuple(got.shape)}：B @ A 的順序？",
                            f"The merged weight should have W's shape {tuple(want.shape)}; got {tuple(got.shape)}: "
                            "is it B @ A?"))
    if torch.allclose(got, want, atol=1e-4):
        return
    for name, value in variants.items():
        if name != "right" and torch.allclose(got, value, atol=1e-4):
            raise Diagnosed(say(*MERGE_WRONG[name]))
    gap = (got - want).abs().max().item()
    raise Diagnosed(say(f"合併結果與 W + (alpha/r)·B A 最多差 {gap:.3g}。", f"The result differs from W + (alpha/r) B A by up to {gap:.3g}."))


@pytest.mark.check(points=1, cell="test-merge-weight", title={"zh": "合併一層：W + (α/r)·B·A", "en": "merge one layer: W + (alpha/r) B A"},
                   hint={"zh": "注意矩陣乘法順序：B @ A 的形狀是 (out, in)。", "en": "Mind the order: B @ A has shape (out, in)."})
def test_merge_weight(submission, rng):
    args, variants = _merge_case(rng)
    _diagnose_merge(submission.nb(NB).call("merge_lora_weight", *args), variants)


@pytest.mark.check(points=2, cell="test-merge-weight", title={"zh": "合併一層：多組 r 與 alpha", "en": "one-layer merge over several r and alpha"},
                   hint={"zh": "scaling 是 alpha / r（浮點除法）。", "en": "The scaling is alpha / r (true division)."}, visibility="hidden")
def test_merge_weight_many_shapes(submission, rng):
    for _ in range(3):
        args, variants = _merge_case(rng)
        _diagnose_merge(submission.nb(NB).call("merge_lora_weight", *args), variants)


@pytest.mark.check(points=1, cell="test-merge-model", title={"zh": "merge_lora_model 用的是你自己的 merge_lora_weight", "en": "merge_lora_model uses your merge_lora_weight"},
                   hint={"zh": "對每個 LoRA 層呼叫一次 merge_lora_weight；不要呼叫 peft 的 merge_and_unload。",
                         "en": "Call merge_lora_weight once per LoRA layer; do not call peft's merge_and_unload."},
                   visibility="hidden")  # compares with the reference: no reference in a student kit
def test_merge_uses_own_weight_merge(submission, reference):
    target = submission.put(reference.nb("02-train").artifact_path("artifacts/lora-adapter"),
                            "reference-artifacts/lora-adapter")
    calls, layers = submission.nb(NB).call("merge_weight_calls", target)
    assert calls == layers, say(f"merge_lora_weight 被呼叫 {calls} 次，模型有 {layers} 個 LoRA 層：是否用了 merge_and_unload？",
                                f"merge_lora_weight was called {calls} times for {layers} LoRA layers: was merge_and_unload used?")


@pytest.mark.check(points=2, cell="test-merge-model", title={"zh": "以 safetensors 存成一般模型", "en": "saved as a plain safetensors model"},
                   hint={"zh": "save_pretrained(..., safe_serialization=True)；不要留下 .bin。",
                         "en": "save_pretrained(..., safe_serialization=True); leave no .bin file."})
def test_merged_files(submission, grader_tmp):
    folder = submission.nb(NB).artifact_path(MERGED)
    copy_safe(folder, grader_tmp / "files")  # refuses pickles
    assert (folder / "config.json").is_file(), say("artifacts/merged/ 缺少 config.json。", "artifacts/merged/ has no config.json.")


@pytest.mark.check(points=2, cell="test-merge-model", title={"zh": "不需 peft 即可載入，沒有 LoRA 模組", "en": "loads without peft, no LoRA modules left"},
                   hint={"zh": "把每個 LoRA 模組換回它的 base_layer，回傳 get_base_model()。",
                         "en": "Replace every LoRA module by its base_layer and return get_base_model()."})
def test_merged_is_plain(merged_model):
    leftovers = [n for n, _ in merged_model.named_parameters() if "lora" in n.lower()]
    assert not leftovers, say(f"合併後仍有 LoRA 參數：{leftovers[:3]}", f"LoRA parameters remain: {leftovers[:3]}")
    weights = [p for n, p in merged_model.named_parameters() if n.endswith("q_proj.weight")]
    assert weights and all(p.dtype in (torch.float32, torch.bfloat16, torch.float16) for p in weights), say(
        "合併後的權重不是浮點數：是否合併進了 4-bit 模型？", "Merged weights are not floating point: was it merged into the 4-bit model?")


@pytest.mark.check(points=4, cell="test-merge-model", title={"zh": "合併後 ≡ 合併前（同一個 base）", "en": "merged equals unmerged (on the same base)"},
                   hint={"zh": "要合併進「訓練時那個」全精度 base：同樣的 load_model，不要量化、不要重新初始化。",
                         "en": "Merge into the very full-precision base that was trained: the same load_model, "
                               "not quantized, not re-initialised."}, visibility="hidden")
def test_merged_equals_unmerged(submission, merged_model, load_adapter, profile, assignment):
    # The adapter 04 merged: the student's own, or the reference's copy if 02 produced none.
    unmerged = load_adapter(submission.nb(NB).artifact_path("artifacts/lora-adapter"))
    require_merged_equal(merged_model, unmerged, probe_ids(profile), assignment.settings["targets"]["merge_rtol"])
