"""02-train parts 2-3: the P-tuning v2 (prefix) configuration, what trains, learning and reloading, judged on the saved adapter."""
import pytest

from graders.suites import peft_tester

NB = "02-train"
PEFT_TYPE = "PREFIX_TUNING"
CASE = peft_tester.PeftCase(family="bert", method="p_tuning_v2", notebook=NB, adapter="artifacts/p-tuning-v2-adapter",
                            dataset="sentiment")
TEXT = ["text"]


@pytest.mark.check(points=2, cell="test-train", title={"zh": "存下的設定是 prefix（P-tuning v2）的 SEQ_CLS 設定",
                                                       "en": "the saved configuration is a prefix (P-tuning v2) SEQ_CLS one"},
                   hint={"zh": "PrefixTuningConfig(task_type=\"SEQ_CLS\", num_virtual_tokens=NUM_VIRTUAL_TOKENS, prefix_projection=False)；不是 PromptTuningConfig 或 PromptEncoderConfig，不要加自訂的鍵。",
                         "en": "PrefixTuningConfig(task_type=\"SEQ_CLS\", num_virtual_tokens=NUM_VIRTUAL_TOKENS, prefix_projection=False); not "
                               "PromptTuningConfig or PromptEncoderConfig, and no keys of your own."})
def test_config_is_prefix(submission, grader_tmp):
    from peft import PrefixTuningConfig

    handle = submission.nb(NB)  # the token count is the locked cell's constant, as the notebook states it
    peft_tester.require_prompt_config(handle.artifact_path(CASE.adapter), grader_tmp, PrefixTuningConfig, PEFT_TYPE,
                                      int(handle.value("NUM_VIRTUAL_TOKENS")))


@pytest.mark.check(points=2, cell="test-train", title={"zh": "只有每一層的 prefix 與分類頭可訓練", "en": "only the per-layer prefixes and the head train"},
                   hint={"zh": "get_peft_model 之後不要改 requires_grad：BERT 凍結，分類頭（modules_to_save）要可訓練。",
                         "en": "Leave requires_grad as get_peft_model sets it: BERT frozen, the head (modules_to_save) trainable."})
def test_head_trainable_base_frozen(submission):
    peft_tester.require_head_trainable_base_frozen(submission.nb(NB).call("trainable_names"))


@pytest.mark.check(points=3, cell="test-train", title={"zh": "在沒看過的句子上學到了（與參考解答相比）",
                                                       "en": "it learned (held-out rows, against the reference)"},
                   hint={"zh": "用 PrefixTuningConfig、保持分類頭可訓練，存下訓練後的模型。",
                         "en": "Use PrefixTuningConfig, keep the head trainable, and save the trained model."},
                   visibility="hidden")  # against the reference's drop: no reference in a student kit
def test_learns_held_out(submission, reference, assignment, profile, grader_tmp):
    peft_tester.require_prompt_adapter_learned(CASE, profile, submission.nb(NB).artifact_path(CASE.adapter),
                                               reference.nb(NB).artifact_path(CASE.adapter), grader_tmp, PEFT_TYPE, TEXT,
                                               assignment.settings["targets"]["loss_drop_fraction"])


@pytest.mark.check(points=2, cell="test-train", title={"zh": "存下的 adapter 載回後 logits 與訓練完的模型相同",
                                                       "en": "the saved adapter reloads to the trained model's logits"},
                   hint={"zh": "用 save_pretrained 存 safetensors；存的是訓練好的那個模型。",
                         "en": "Save with save_pretrained (safetensors), from the model you trained."},
                   visibility="hidden")
def test_adapter_reloads(submission, profile, rng, grader_tmp):
    notebook = submission.nb(NB)
    peft_tester.require_prompt_adapter_reloads(CASE, profile, notebook.artifact_path(CASE.adapter),
                                               lambda ids, mask: notebook.call("adapted_logits", ids, mask), grader_tmp,
                                               PEFT_TYPE, TEXT, rng)
