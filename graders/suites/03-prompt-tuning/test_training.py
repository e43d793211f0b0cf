"""02-train parts 2-3: peft's PromptTuningConfig, vocabulary initialisation, frozen base, count, learning, reload."""
import json

import pytest
import torch
from safetensors.torch import load_file

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites.artifacts import copy_safe
from graders.suites.peft_tester import (PeftCase, base_model, count_diagnosis, expected_trainable, require_learned,
                                        require_reload)

NB = "02-train"
ADAPTER = "artifacts/prompt-adapter"
PROMPT = PeftCase(family="llama", method="prompt_tuning", notebook=NB, adapter=ADAPTER)


@pytest.mark.check(points=2, cell="test-train", title={"zh": "peft 的 soft prompt 從詞彙初始化", "en": "peft's soft prompt starts from vocabulary embeddings"},
                   hint={"zh": "prompt_tuning_init 用 \"SAMPLE_VOCAB\" 或 \"TEXT\"，不要用 \"RANDOM\"。",
                         "en": "Use prompt_tuning_init \"SAMPLE_VOCAB\" or \"TEXT\", not \"RANDOM\"."})
def test_peft_prompt_from_vocab(submission, profile, rng):
    vocab = base_model(PROMPT, profile).get_input_embeddings().weight.detach().cpu()
    prompt = submission.nb(NB).call("initial_peft_prompt", int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))
    assert prompt.dim() == 2 and prompt.shape[1] == vocab.shape[1], say(
        f"soft prompt 應為 (n, {vocab.shape[1]})，實際 {tuple(prompt.shape)}：這是 prompt tuning 的設定嗎？",
        f"The soft prompt should be (n, {vocab.shape[1]}); got {tuple(prompt.shape)}: is this a prompt-tuning configuration?")
    nearest = torch.cdist(prompt.double(), vocab.double(), compute_mode="donot_use_mm_for_euclid_dist").amin(dim=1)
    off = int((nearest > 1e-5).sum())
    assert off == 0, say(f"{off}/{prompt.shape[0]} 個 virtual token 不是任何詞彙的 embedding：初始化是隨機的嗎？",
                         f"{off}/{prompt.shape[0]} virtual tokens are no vocabulary embedding: is the initialisation random?")


@pytest.mark.check(points=2, cell="test-train", title={"zh": "訓練幾步後 base 的每個參數都沒動", "en": "no base parameter moves after training steps"},
                   hint={"zh": "只把 requires_grad 的參數交給 optimizer，不要解凍 base。",
                         "en": "Give the optimizer only the parameters that require grad; do not unfreeze the base."})
def test_base_frozen(submission, profile, assignment):
    steps = assignment.settings["targets"]["frozen_steps"]
    got = submission.nb(NB).call("state_after_steps", steps)
    fresh = base_model(PROMPT, profile).state_dict()
    moved = sorted(k for k, v in fresh.items() if k not in got["base"] or not torch.equal(got["base"][k], v.cpu()))
    assert not moved, say(f"訓練 {steps} 步後 base 有 {len(moved)} 個參數改變了（例如 {moved[:3]}）：prompt tuning 只訓練 soft prompt。",
                          f"After {steps} steps {len(moved)} base parameters changed (e.g. {moved[:3]}): prompt tuning trains the soft prompt only.")
    assert not torch.equal(got["before"], got["after"]), say(
        f"訓練 {steps} 步後 soft prompt 完全沒變：optimizer 有拿到它嗎？",
        f"After {steps} steps the soft prompt has not changed: does the optimizer hold it?")


@pytest.mark.check(points=2, cell="test-train", title={"zh": "可訓練參數量 = tokens × hidden（grader 選的長度）", "en": "trainable count = tokens x hidden (grader-chosen length)"},
                   hint={"zh": "count_trainable 加總所有 requires_grad 參數的 numel()，以及全部參數。",
                         "en": "count_trainable sums numel() over every parameter that requires grad, and over all."},
                   visibility="hidden")
def test_trainable_count_is_exact(submission, profile, rng):
    from peft import PromptTuningConfig

    hidden = base_model(PROMPT, profile).config.hidden_size
    for unfreeze in ([["lm_head"], ["norm"]][int(torch.randint(0, 2, (1,), generator=rng))], []):
        n = int(torch.randint(4, 40, (1,), generator=rng))
        want = expected_trainable(PROMPT, profile, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n), unfreeze)
        if not unfreeze:
            assert want[0] == n * hidden, f"grader: peft counts {want[0]} for {n} tokens x {hidden}"  # the formula itself
        got = submission.nb(NB).call("count_trainable_on", n, unfreeze)
        problem = count_diagnosis(tuple(int(v) for v in got), want)
        if problem:
            raise Diagnosed(problem)


def _config(handle, tmp):
    folder = copy_safe(handle.artifact_path(ADAPTER), tmp)
    path = folder / "adapter_config.json"
    assert path.is_file(), say("adapter 沒有 adapter_config.json。", "The adapter has no adapter_config.json.")
    return json.loads(path.read_text()), folder


@pytest.mark.check(points=2, cell="test-train", title={"zh": "prompt tuning 設定符合規格", "en": "prompt-tuning configuration as specified"},
                   hint={"zh": "PromptTuningConfig：task_type=\"CAUSAL_LM\"、num_virtual_tokens=NUM_VIRTUAL_TOKENS。",
                         "en": "PromptTuningConfig: task_type=\"CAUSAL_LM\", num_virtual_tokens=NUM_VIRTUAL_TOKENS."},
                   visibility="hidden")  # compared with the reference: the student kit has none to run
def test_config_matches_spec(submission, reference, profile, grader_tmp):
    from peft import PromptTuningConfig

    got, folder = _config(submission.nb(NB), grader_tmp / "s")
    want, _ = _config(reference.nb(NB), grader_tmp / "r")
    diffs = [f"{k}={got.get(k)!r} ≠ {want[k]!r}" for k in ("peft_type", "task_type", "num_virtual_tokens") if got.get(k) != want[k]]
    known = set(PromptTuningConfig().to_dict()) | set(want)
    extra = sorted(set(got) - known)
    if extra:
        diffs.append(say(f"多了不認得的設定 {extra}", f"unknown extra keys {extra}"))
    if diffs:
        raise Diagnosed(say("adapter_config.json 與規格不同：", "adapter_config.json differs from the specification: ") + "; ".join(diffs))
    weights = load_file(folder / "adapter_model.safetensors")
    shape = (want["num_virtual_tokens"], base_model(PROMPT, profile).config.hidden_size)
    shapes = [tuple(t.shape) for t in weights.values()]
    assert shapes == [shape], say(f"存下的 soft prompt 應只有一個 {shape} 的 tensor（tokens × hidden），實際 {shapes}。",
                                  f"The saved soft prompt should be one {shape} tensor (tokens x hidden); got {shapes}.")


@pytest.mark.check(points=2, cell="test-train", title={"zh": "soft prompt 在沒看過的資料上學到了", "en": "the soft prompt learned (held-out rows)"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad；存下訓練後的模型。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad; save the trained model."},
                   visibility="hidden")  # a fraction of the reference's drop: no reference in a student kit
def test_learns_on_held_out(submission, reference, assignment, profile, grader_tmp):
    require_learned(PROMPT, profile, submission.nb(NB).artifact_path(ADAPTER), reference.nb(NB).artifact_path(ADAPTER),
                    assignment.settings["targets"]["loss_drop_fraction"], grader_tmp)


@pytest.mark.check(points=2, cell="test-train", title={"zh": "存下的 soft prompt 載回後 logits 相同", "en": "the saved soft prompt reloads to the same logits"},
                   hint={"zh": "用 save_pretrained 存 safetensors；存檔的是訓練好的那個模型。",
                         "en": "Save with save_pretrained (safetensors), from the model you trained."}, visibility="hidden")
def test_adapter_reloads(submission, profile, grader_tmp):
    notebook = submission.nb(NB)
    require_reload(lambda ids: notebook.call("adapted_logits", ids), notebook.artifact_path(ADAPTER),
                   base_model(PROMPT, profile), grader_tmp, profile)
