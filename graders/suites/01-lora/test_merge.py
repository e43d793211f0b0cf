"""04-merge-and-deploy: W + (alpha/r) B A, a plain model, safetensors, same base, full precision."""
import pytest
import torch

from graders.plugin import say
from graders.suites.artifacts import copy_safe, probe_ids

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


@pytest.mark.check(points=1, cell="test-merge-weight", title={"zh": "合併一層：W + (α/r)·B·A", "en": "merge one layer: W + (alpha/r) B A"},
                   hint={"zh": "注意矩陣乘法順序：B @ A 的形狀是 (out, in)。", "en": "Mind the order: B @ A has shape (out, in)."})
def test_merge_weight(submission, rng):
    W, A, B = torch.randn(7, 5, generator=rng), torch.randn(3, 5, generator=rng), torch.randn(7, 3, generator=rng)
    got = submission.nb(NB).call("merge_lora_weight", W, A, B, 6.0, 3)
    assert torch.allclose(got, W + 2.0 * B @ A, atol=1e-5), say("合併結果與 W + (alpha/r)·B·A 不符。",
                                                              "The result differs from W + (alpha/r) B A.")


@pytest.mark.check(points=2, cell="test-merge-weight", title={"zh": "合併一層與參考解答一致", "en": "one-layer merge matches the reference"},
                   hint={"zh": "scaling 是 alpha / r。", "en": "The scaling is alpha / r."}, visibility="hidden")
def test_merge_weight_matches_reference(submission, reference, rng):
    for alpha, r in ((16.0, 8), (5.0, 2)):
        W, A, B = torch.randn(9, 6, generator=rng), torch.randn(r, 6, generator=rng), torch.randn(9, r, generator=rng)
        args = (W, A, B, alpha, r)
        assert torch.allclose(submission.nb(NB).call("merge_lora_weight", *args),
                              reference.nb(NB).call("merge_lora_weight", *args), atol=1e-5)


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
    rtol = assignment.settings["targets"]["merge_rtol"]
    # The adapter 04 merged: the student's own, or the reference's copy if 02 produced none.
    unmerged = load_adapter(submission.nb(NB).artifact_path("artifacts/lora-adapter"))
    ids = probe_ids(profile)
    with torch.no_grad():
        want = unmerged(input_ids=ids).logits
        got = merged_model(input_ids=ids).logits
    err = ((got - want).abs().max() / want.abs().max()).item()
    assert err <= rtol
