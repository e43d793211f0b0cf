"""02-train parts 3-4: peft's PrefixTuningConfig as specified (bad input named), the MLP removed from
the saved adapter, reload and learning judged from the artifact."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester
from graders.suites.peft_tester import PeftCase, base_model

NB = "02-train"
ADAPTER = "artifacts/prefix-adapter"
PREFIX = PeftCase(family="gpt2", method="prefix_tuning", notebook=NB, adapter=ADAPTER)
SPEC_KEYS = ("task_type", "num_virtual_tokens", "prefix_projection", "encoder_hidden_size")


@pytest.mark.check(points=2, cell="test-train", title={"zh": "prefix tuning 設定符合規格", "en": "prefix-tuning configuration as specified"},
                   hint={"zh": "PrefixTuningConfig：task_type=\"CAUSAL_LM\"、num_virtual_tokens=NUM_VIRTUAL_TOKENS、prefix_projection=True、encoder_hidden_size=ENCODER_HIDDEN。",
                         "en": "PrefixTuningConfig: task_type=\"CAUSAL_LM\", num_virtual_tokens=NUM_VIRTUAL_TOKENS, prefix_projection=True, encoder_hidden_size=ENCODER_HIDDEN."},
                   visibility="hidden")  # compared with the reference: the student kit has none to run
def test_config_matches_spec(submission, reference, grader_tmp):
    from peft import PrefixTuningConfig

    got = peft_tester.saved_json(submission.nb(NB).artifact_path(ADAPTER), "adapter_config.json", grader_tmp)
    want = peft_tester.saved_json(reference.nb(NB).artifact_path(ADAPTER), "adapter_config.json", grader_tmp)
    if got.get("peft_type") != want["peft_type"]:
        raise Diagnosed(say(f"adapter 的方法是 {got.get('peft_type')!r}，不是 {want['peft_type']}：請用 peft 的 PrefixTuningConfig。",
                            f"The adapter's method is {got.get('peft_type')!r}, not {want['peft_type']}: use peft's PrefixTuningConfig."))
    diffs = [f"{k}={got.get(k)!r} ≠ {want[k]!r}" for k in SPEC_KEYS if got.get(k) != want[k]]
    extra = sorted(set(got) - set(PrefixTuningConfig().to_dict()) - set(want))
    if extra:
        diffs.append(say(f"多了不認得的設定 {extra}", f"unknown extra keys {extra}"))
    if diffs:
        raise Diagnosed(say("adapter_config.json 與規格不同：", "adapter_config.json differs from the specification: ") + "; ".join(diffs))


@pytest.mark.check(points=3, cell="test-train", title={"zh": "存下的 adapter 是 MLP 的輸出，不含 MLP", "en": "the saved adapter is the MLP's output, without the MLP"},
                   hint={"zh": "用 prefix_projection=True 訓練，再用 save_pretrained 存：peft 只存 P = MLP(P')（n × 2Ld），載回時不需要 MLP。",
                         "en": "Train with prefix_projection=True and save with save_pretrained: peft stores only P = MLP(P') (n x 2Ld); loading needs no MLP."},
                   visibility="hidden")
def test_saved_prefix_is_mlp_output(submission, profile, grader_tmp):
    notebook = submission.nb(NB)
    state = notebook.call("trained_encoder_state")
    if "transform.0.weight" not in state:
        raise Diagnosed(say(f"訓練好的 prefix encoder 沒有 MLP（只有 {sorted(state)}）：請用 prefix_projection=True（論文的 reparameterisation）。",
                            f"The trained prefix encoder has no MLP (only {sorted(state)}): use prefix_projection=True (the paper's reparameterisation)."))
    with torch.no_grad():  # the grader's own P = W2 tanh(W1 P' + b1) + b2
        hidden = torch.tanh(state["embedding.weight"] @ state["transform.0.weight"].T + state["transform.0.bias"])
        want = hidden @ state["transform.2.weight"].T + state["transform.2.bias"]
    config = base_model(PREFIX, profile).config
    assert want.shape[1] == 2 * config.n_layer * config.n_embd, say(
        f"MLP 的輸出寬 {want.shape[1]}，應為 2 × layers × hidden = {2 * config.n_layer * config.n_embd}。",
        f"The MLP's output is {want.shape[1]} wide; it should be 2 * layers * hidden = {2 * config.n_layer * config.n_embd}.")
    saved = peft_tester.saved_tensors(notebook.artifact_path(ADAPTER), "adapter_model.safetensors", grader_tmp)
    shapes = {k: tuple(v.shape) for k, v in saved.items()}
    if shapes != {"prompt_embeddings": tuple(want.shape)}:
        raise Diagnosed(say(f"adapter 應只存一個 {tuple(want.shape)} 的 prompt_embeddings（MLP 的輸出），實際 {shapes}："
                            "MLP 的權重不需要存，載回時 peft 直接用 P。",
                            f"The adapter should hold one {tuple(want.shape)} tensor prompt_embeddings (the MLP's output); got {shapes}: "
                            "the MLP's weights are not needed, peft loads P directly."))
    gap = float((saved["prompt_embeddings"] - want).abs().max())
    assert gap <= 1e-5 * max(1.0, float(want.abs().max())), say(
        f"存下的 prefix 與訓練好的 MLP 算出的 P 最多差 {gap:.3g}：存的是訓練完的模型嗎？",
        f"The saved prefix differs from the trained MLP's P by up to {gap:.3g}: was the trained model saved?")


@pytest.mark.check(points=2, cell="test-train", title={"zh": "存下的 prefix 載回後 logits 相同", "en": "the saved prefix reloads to the same logits"},
                   hint={"zh": "用 save_pretrained 存 safetensors；存檔的是訓練好的那個模型。",
                         "en": "Save with save_pretrained (safetensors), from the model you trained."}, visibility="hidden")
def test_adapter_reloads(submission, profile, grader_tmp):
    notebook = submission.nb(NB)
    peft_tester.require_reload(lambda ids: notebook.call("adapted_logits", ids), notebook.artifact_path(ADAPTER),
                               base_model(PREFIX, profile), grader_tmp, profile)


@pytest.mark.check(points=3, cell="test-train", title={"zh": "prefix 在沒看過的資料上學到了", "en": "the prefix learned (held-out rows)"},
                   hint={"zh": "設定要讓 peft 訓練 prefix（與 MLP）；存下訓練後的模型。",
                         "en": "The configuration must let peft train the prefix (and its MLP); save the trained model."},
                   timeout=180, visibility="hidden")  # a fraction of the reference's drop: no reference in a student kit
def test_learns_on_held_out(submission, reference, assignment, profile, grader_tmp):
    peft_tester.require_learned(PREFIX, profile, submission.nb(NB).artifact_path(ADAPTER), reference.nb(NB).artifact_path(ADAPTER),
                                assignment.settings["targets"]["loss_drop_fraction"], grader_tmp)
