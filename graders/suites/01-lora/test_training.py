"""02-train parts 2-4: peft configuration, parameter count, learning, reload, QLoRA."""
import pytest
import torch
from safetensors.torch import load_file

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites.artifacts import copy_safe
from graders.suites.peft_tester import (PeftCase, base_model, count_diagnosis, expected_trainable, held_out_loss,
                                        load_adapter, require_learned, require_reload)

NB = "02-train"
ADAPTER = "artifacts/lora-adapter"
QADAPTER = "artifacts/qlora-adapter"
LORA = PeftCase(family="llama", method="lora", notebook=NB, adapter=ADAPTER)


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


@pytest.mark.check(points=3, cell="test-train-lora", title={"zh": "可訓練參數量（grader 選的模型）", "en": "trainable parameters (on a model the grader chose)"},
                   hint={"zh": "count_trainable 加總所有 requires_grad 參數的 numel()，以及全部參數。",
                         "en": "count_trainable sums numel() over every parameter that requires grad, and over all."},
                   visibility="hidden")
def test_trainable_count_is_exact(submission, profile, rng):
    from peft import LoraConfig

    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # Two models per student: one with a non-LoRA part unfrozen (a count by name fails it), one without.
    for unfreeze in ([["lm_head"], ["norm"]][int(torch.randint(0, 2, (1,), generator=rng))], []):
        pick = torch.randperm(len(modules), generator=rng)[: int(torch.randint(1, 4, (1,), generator=rng))]
        targets = sorted(modules[int(i)] for i in pick)
        r = int(torch.randint(2, 13, (1,), generator=rng))
        want = expected_trainable(LORA, profile, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets), unfreeze)
        got = submission.nb(NB).call("count_trainable_on", r, targets, unfreeze)
        problem = count_diagnosis(tuple(int(v) for v in got), want)
        if problem:
            raise Diagnosed(problem)


def _learned(handle, relpath, base_loss, base, tmp, profile):
    model = load_adapter(handle.artifact_path(relpath), base, tmp)
    return base_loss - held_out_loss(model, LORA, profile)


@pytest.mark.check(points=2, cell="test-train-lora", title={"zh": "adapter 在沒看過的資料上學到了", "en": "the adapter learned (held-out rows)"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad；存下訓練後的模型。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad; save the trained model."},
                   visibility="hidden")  # the target is a fraction of the reference's drop: no reference in a student kit
def test_learns_on_held_out(submission, reference, assignment, profile, grader_tmp):
    require_learned(LORA, profile, submission.nb(NB).artifact_path(ADAPTER), reference.nb(NB).artifact_path(ADAPTER),
                    assignment.settings["targets"]["loss_drop_fraction"], grader_tmp)


@pytest.mark.check(points=2, cell="test-train-lora", title={"zh": "存下的 adapter 載回後 logits 相同", "en": "the saved adapter reloads to the same logits"},
                   hint={"zh": "用 save_pretrained 存 safetensors；存檔的是訓練好的那個模型。",
                         "en": "Save with save_pretrained (safetensors), from the model you trained."}, visibility="hidden")
def test_adapter_reloads(submission, profile, grader_tmp):
    notebook = submission.nb(NB)
    require_reload(lambda ids: notebook.call("adapted_logits", ids), notebook.artifact_path(ADAPTER),
                   base_model(LORA, profile), grader_tmp, profile)


@pytest.mark.check(points=3, cell="test-train-qlora", title={"zh": "QLoRA 真的有在訓練", "en": "QLoRA really trains"},
                   hint={"zh": "loss 不動、lora_B 仍是 0：LoRA 沒拿到 gradient（4-bit 權重的 CPU 陷阱）。",
                         "en": "A flat loss with lora_B still zero means LoRA got no gradient (the 4-bit CPU trap)."},
                   visibility="hidden")  # a fraction of the reference's drop: no reference in a student kit
def test_qlora_trains(submission, reference, assignment, profile, grader_tmp):
    fraction = assignment.settings["targets"]["qlora_loss_fraction"]
    folder = copy_safe(submission.nb(NB).artifact_path(QADAPTER), grader_tmp / "q")
    weights = load_file(folder / "adapter_model.safetensors")
    b_norm = sum(float(t.float().norm()) for k, t in weights.items() if "lora_B" in k)
    assert b_norm > 0, say("QLoRA 的 lora_B 訓練後仍全為 0：LoRA 參數沒有拿到 gradient。",
                           "QLoRA's lora_B is still all zeros after training: LoRA got no gradient.")
    # Judged in full precision on held-out rows: the adapter, not the notebook's loss log.
    base_loss = held_out_loss(base_model(LORA, profile), LORA, profile)
    got = _learned(submission.nb(NB), QADAPTER, base_loss, base_model(LORA, profile), grader_tmp, profile)
    want = fraction * _learned(reference.nb(NB), QADAPTER, base_loss, base_model(LORA, profile), grader_tmp, profile)
    assert got >= want, say(f"QLoRA adapter 在 held-out 資料上讓 loss 下降 {got:.3f}，目標至少 {want:.3f}。",
                            f"The QLoRA adapter lowers the held-out loss by {got:.3f}; the target is at least {want:.3f}.")


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
