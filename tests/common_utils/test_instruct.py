"""Templates, prompt masking and the collator."""
from __future__ import annotations

import pytest
import torch

from common_utils.datasets import load_course_dataset
from common_utils.instruct import IGNORE_INDEX, InstructionDataCollator, InstructionDataset, format_prompt
from common_utils.models import load_tokenizer

ROW = {"instruction": "把單字翻成英文", "input": "貓", "output": "cat"}


@pytest.mark.parametrize("template, prompt_part", [
    ("alpaca", "### Instruction:\n把單字翻成英文\n\n### Input:\n貓\n\n### Response:\n"),
    ("dolly", "### Instruction:\n把單字翻成英文\n\n### Context:\n貓\n\n### Response:\n"),
    ("chatml", "<|im_start|>user\n把單字翻成英文\n貓<|im_end|>\n<|im_start|>assistant\n"),
])
def test_templates(template, prompt_part):
    prompt, response = format_prompt(ROW, template)
    assert prompt == prompt_part and response.startswith("cat")


def test_prompt_tokens_are_masked_and_long_rows_dropped():
    tok = load_tokenizer()
    ds = InstructionDataset([ROW, {**ROW, "input": "貓" * 400}], tok, max_length=64)
    assert len(ds) == 1 and ds.dropped == 1
    ex = ds[0]
    n_prompt = len(tok(format_prompt(ROW)[0], add_special_tokens=False)["input_ids"])
    assert ex["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:] and ex["labels"][-1] == tok.eos_token_id


def test_collator_pads_dynamically_to_a_multiple():
    tok = load_tokenizer()
    ds = InstructionDataset(load_course_dataset("instructions", limit=4), tok)
    batch = InstructionDataCollator(tok, pad_to_multiple_of=8)([ds[i] for i in range(4)])
    longest = max(len(ds[i]["input_ids"]) for i in range(4))
    assert batch["input_ids"].shape[1] == (longest + 7) // 8 * 8
    padded = batch["attention_mask"] == 0
    assert torch.all(batch["labels"][padded] == IGNORE_INDEX) and torch.all(batch["input_ids"][padded] == tok.pad_token_id)


def test_unknown_template_and_dataset_name_the_valid_ones():
    with pytest.raises(ValueError, match="valid templates: alpaca, dolly, chatml"):
        format_prompt(ROW, "vicuna")
    with pytest.raises(ValueError, match="valid datasets: instructions, sentiment, paraphrase, summaries, preferences"):
        load_course_dataset("squad")


def test_shipped_datasets_have_their_sizes():
    assert len(load_course_dataset("instructions")) >= 500
    for name in ("sentiment", "paraphrase", "summaries", "preferences"):
        assert len(load_course_dataset(name)) >= 100


def test_shipped_datasets_are_what_the_script_makes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_datasets", "scripts/make_datasets.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(tmp_path)
    for made in sorted(tmp_path.glob("*.jsonl")):
        assert made.read_bytes() == (script.OUT / made.name).read_bytes(), f"run scripts/make_datasets.py: {made.name} drifted"
