"""02-train parts 2-4: peft configuration, parameter count, learning, reload, QLoRA."""
import pytest
import torch
from safetensors.torch import load_file

from graders.plugin import say

from graders.suites.artifacts import copy_safe, probe_ids, read_json_artifact

NB = "02-train"
ADAPTER = "artifacts/lora-adapter"


def _config(handle, grader_tmp):
    import json

    folder = copy_safe(handle.artifact_path(ADAPTER), grader_tmp / "cfg")
    path = folder / "adapter_config.json"
    assert path.is_file(), say("adapter 沒有 adapter_config.json。", "The adapter has no adapter_config.json.")
    return json.loads(path.read_text())


@pytest.mark.check(points=2, cell="test-train-lora", title={"zh": "LoRA 設定符合規格", "en": "LoRA configuration as specified"},
                   hint={"zh": "r=8、lora_alpha=16、lora_dropout=0.05、target_modules 只有 q_proj 與 v_proj。",
                         "en": "r=8, lora_alpha=16, lora_dropout=0.05, target_modules exactly q_proj and v_proj."},
                   visibility="hidden")  # compared with the reference: the student kit has none to run
def test_config_matches_spec(submission, reference, grader_tmp):
    got, want = _config(submission.nb(NB), grader_tmp / "s"), _config(reference.nb(NB), grader_tmp / "r")
    keys = ("r", "lora_alpha", "lora_dropout", "bias", "task_type")
    diffs = {k: (got.get(k), want[k]) for k in keys if got.get(k) != want[k]}
    if sorted(got.get("target_modules") or []) != sorted(want["target_modules"]):
        diffs["target_modules"] = (sorted(got.get("target_modules") or []), sorted(want["target_modules"]))
    assert not diffs, say("設定與規格不同（實際, 預期）：" + ", ".join(f"{k}={v[0]!r} 應為 {v[1]!r}" for k, v in diffs.items()),
                          "Configuration differs: " + ", ".join(f"{k}={v[0]!r}, expected {v[1]!r}" for k, v in diffs.items()))


@pytest.mark.check(points=3, cell="test-train-lora", title={"zh": "可訓練參數量（grader 重新計算）", "en": "trainable parameters (recomputed by the grader)"},
                   hint={"zh": "count_trainable 只加總 requires_grad 的參數。", "en": "count_trainable sums only parameters that require grad."},
                   visibility="hidden")
def test_trainable_count_is_exact(submission, base_model, grader_tmp):
    from peft import LoraConfig, get_peft_model

    config = _config(submission.nb(NB), grader_tmp)
    fields = {k: config[k] for k in ("r", "lora_alpha", "lora_dropout", "target_modules", "bias", "task_type") if k in config}
    model = get_peft_model(base_model, LoraConfig(**fields))
    want = sum(p.numel() for p in model.parameters() if p.requires_grad)
    got = submission.nb(NB).value("n_trainable")
    assert got == want


@pytest.mark.check(points=2, cell="test-train-lora", title={"zh": "訓練讓 loss 充分下降", "en": "training lowers the loss enough"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad."},
                   visibility="hidden")  # the target is a fraction of the reference's loss drop
def test_loss_below_target(submission, reference, assignment):
    fraction = assignment.settings["targets"]["loss_drop_fraction"]

    def drop(losses):
        return sum(losses[:5]) / 5 - sum(losses[-5:]) / 5

    got = drop(read_json_artifact(submission.nb(NB), "artifacts/train_metrics.json")["losses"])
    want = fraction * drop(read_json_artifact(reference.nb(NB), "artifacts/train_metrics.json")["losses"])
    assert got >= want, say(f"訓練讓 loss 下降 {got:.3f}，目標至少 {want:.3f}（參考解答下降量的 {fraction}×）。",
                            f"Training lowered the loss by {got:.3f}; the target is at least {want:.3f} ({fraction}x the reference's drop).")


@pytest.mark.check(points=2, cell="test-train-lora", title={"zh": "存下的 adapter 載回後 logits 相同", "en": "the saved adapter reloads to the same logits"},
                   hint={"zh": "用 save_pretrained 存 safetensors；存檔的是訓練好的那個模型。",
                         "en": "Save with save_pretrained (safetensors), from the model you trained."}, visibility="hidden")
def test_adapter_reloads(submission, load_adapter, profile):
    ids = probe_ids(profile)
    reloaded = load_adapter(submission.nb(NB).artifact_path(ADAPTER))
    with torch.no_grad():
        want = reloaded(input_ids=ids).logits
    got = submission.nb(NB).call("adapted_logits", ids)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.check(points=3, cell="test-train-qlora", title={"zh": "QLoRA 真的有在訓練", "en": "QLoRA really trains"},
                   hint={"zh": "loss 不動、lora_B 仍是 0：LoRA 沒拿到 gradient（4-bit 權重的 CPU 陷阱）。",
                         "en": "A flat loss with lora_B still zero means LoRA got no gradient (the 4-bit CPU trap)."})
def test_qlora_trains(submission, assignment, grader_tmp):
    fraction = assignment.settings["targets"]["qlora_loss_fraction"]
    losses = read_json_artifact(submission.nb(NB), "artifacts/qlora_metrics.json")["losses"]
    folder = copy_safe(submission.nb(NB).artifact_path("artifacts/qlora-adapter"), grader_tmp / "q")
    weights = load_file(folder / "adapter_model.safetensors")
    b_norm = sum(float(t.float().norm()) for k, t in weights.items() if "lora_B" in k)
    assert b_norm > 0, say("QLoRA 的 lora_B 訓練後仍全為 0：LoRA 參數沒有拿到 gradient。",
                           "QLoRA's lora_B is still all zeros after training: LoRA got no gradient.")
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last <= fraction * first, say(f"QLoRA loss 從 {first:.3f} 到 {last:.3f}，沒有降到 {fraction}× 以下。",
                                         f"QLoRA loss went from {first:.3f} to {last:.3f}, not below {fraction}x.")


@pytest.mark.gpu
@pytest.mark.check(points=2, title={"zh": "訓練吞吐量 ≥ 參考解答的 0.8×", "en": "training throughput >= 0.8x the reference"},
                   hint={"zh": "避免在訓練迴圈中做多餘的 .item() 或 CPU/GPU 複製。",
                         "en": "Avoid needless .item() calls and host/device copies in the loop."}, timeout=600,
                   visibility="hidden")  # paired against the reference
def test_throughput_against_reference(submission, reference, assignment):
    import statistics

    ratios = []
    for i in range(5):  # paired and alternating, so drift of the machine hits both sides alike
        order = [submission, reference] if i % 2 == 0 else [reference, submission]
        measured = {id(h): h.nb(NB).call("measure_train_throughput", 20) for h in order}
        ratios.append(measured[id(submission)] / measured[id(reference)])
    target = assignment.settings["targets"]["throughput_ratio"]
    median = statistics.median(ratios)
    assert median >= target, say(f"吞吐量是參考解答的 {median:.2f}×（目標 ≥ {target}×）。",
                                 f"Throughput is {median:.2f}x the reference (target >= {target}x).")


@pytest.mark.gpu
@pytest.mark.check(points=2, title={"zh": "QLoRA 峰值記憶體低於目標", "en": "QLoRA peak memory under the target"},
                   hint={"zh": "base model 要用 nf4 載入；batch 與序列長度照設定。",
                         "en": "Load the base in nf4; keep the batch size and sequence length as set."})
def test_peak_memory(submission, assignment):
    name = torch.cuda.get_device_name(0)
    targets = assignment.settings["targets"]["peak_memory_gib"]
    target = next((v for k, v in targets.items() if k in name), None)
    if target is None:
        pytest.fail(f"no peak-memory target for {name}; add it to [targets.peak_memory_gib]", pytrace=False)
    peak = submission.nb(NB).call("qlora_peak_memory_gib")
    assert peak <= target, say(f"峰值記憶體 {peak:.1f} GiB，超過 {name} 的目標 {target} GiB。",
                               f"Peak memory {peak:.1f} GiB exceeds the {target} GiB target for {name}.")
