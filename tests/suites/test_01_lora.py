"""01-lora: the solution scores full marks, the release scores zero, and every mutant (a
plausible wrong answer) fails exactly the checks it should and no other.

One batch grades them all (module fixture, two workers); each test reads one student's result.
"""
from __future__ import annotations

import nbformat
import pytest

from graders.assignment import load_assignment
from graders.engine.batch import grade_batch
from graders.engine.grade_one import GradeOptions
from graders.release.fill import filled_release

from tests.graders.helpers import REPO, write_submission

A = "01-lora"
NOTEBOOKS = ["01-setup.ipynb", "02-train.ipynb", "03-inference.ipynb", "04-merge-and-deploy.ipynb"]


def solved(notebook: str, gid: str) -> str:
    return next(c.source for c in filled_release(A, notebook).cells if c.id == gid)


def edit(notebook: str, gid: str, old: str, new: str) -> dict:
    source = solved(notebook, gid)
    assert old in source, f"mutant edit {old!r} not found in {gid}"
    return {notebook: {gid: source.replace(old, new)}}


# student -> (cell edits per notebook, the check ids that must fail, flags that must appear)
MUTANTS = {
    "scale-alpha": (edit("02-train.ipynb", "lora-layer", "self.scaling = alpha / r", "self.scaling = alpha"),
                    {"lora_layer.output_matches_reference", "lora_layer.equals_peft_layer"}, set()),
    "b-not-zero": (edit("02-train.ipynb", "lora-layer", "torch.zeros(base.out_features, r)", "torch.randn(base.out_features, r)"),
                   {"lora_layer.initialisation"}, set()),
    "dropout-everywhere": (edit("02-train.ipynb", "lora-layer",
                                "return self.base(x) + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)",
                                "return self.dropout(self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T))"),
                           {"lora_layer.dropout_on_lora_path_only"}, set()),
    "wrong-targets": (edit("02-train.ipynb", "lora-config", '["q_proj", "v_proj"]', '["q_proj", "k_proj", "v_proj"]'),
                      {"training.config_matches_spec"}, set()),
    "count-all": (edit("02-train.ipynb", "lora-config", "if p.requires_grad)", ")"),
                  {"training.trainable_count_is_exact"}, set()),
    "labels-not-masked": (edit("01-setup.ipynb", "build-example", "[IGNORE_INDEX] * len(prompt_ids) + list(response_ids)",
                               "list(prompt_ids) + list(response_ids)"),
                          {"setup.prompt_tokens_are_masked", "setup.build_example_matches_reference"}, set()),
    "input-always": (edit("01-setup.ipynb", "format-prompt", 'if example.get("input", "").strip():', "if True:"),
                     {"setup.format_prompt_matches_reference"}, set()),
    "no-learning": (edit("02-train.ipynb", "train-loop", "lr=lr)", "lr=1e-7)"),
                    {"training.loss_below_target", "training.qlora_trains"}, set()),
    "adapter-not-saved": (edit("02-train.ipynb", "lora-config", "model.save_pretrained(folder, safe_serialization=True)", "pass"),
                          {"training.config_matches_spec", "training.trainable_count_is_exact", "training.adapter_reloads",
                           "training.qlora_trains"}, {"reference_artifact"}),
    "decode-prompt-too": (edit("03-inference.ipynb", "greedy-generate", 'out[0, inputs["input_ids"].shape[1]:]', "out[0]"),
                          {"inference.generation_matches_reference"}, set()),
    "merge-scale-alpha": (edit("04-merge-and-deploy.ipynb", "merge-weight", "(alpha / r) *", "alpha *"),
                          {"merge.merge_weight", "merge.merge_weight_matches_reference", "merge.merged_equals_unmerged"}, set()),
    "merge-into-4bit": (edit("04-merge-and-deploy.ipynb", "merge-model", 'return load_model("llama", PROFILE)',
                             'return load_model("llama", PROFILE, quantization="nf4")'),
                        {"merge.merged_is_plain", "merge.merged_equals_unmerged"}, set()),
    "merge-other-base": (edit("04-merge-and-deploy.ipynb", "merge-model", 'return load_model("llama", PROFILE)',
                              'return AutoModelForCausalLM.from_config(load_model("llama", PROFILE).config)'),
                         {"merge.merged_equals_unmerged"}, set()),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    submitted = root / "submitted"
    write_submission(submitted, "solution", A, {nb: filled_release(A, nb) for nb in NOTEBOOKS})
    write_submission(submitted, "untouched", A, {nb: nbformat.read(REPO / "release" / A / nb, as_version=4) for nb in NOTEBOOKS})
    for student, (edits, _, _) in MUTANTS.items():
        write_submission(submitted, student, A, {nb: filled_release(A, nb, edits.get(nb)) for nb in NOTEBOOKS})
    summary = grade_batch(load_assignment(A), submitted, root / "results", GradeOptions(), jobs=2)
    assert summary.ungraded == [], [(r["student"], r["reason"]) for r in summary.ungraded]
    return {r["student"]: r for r in summary.graded}


def failing(result) -> set[str]:
    return {c["id"] for c in result["checks"] if c["status"] in ("failed", "error")}


def test_solution_gets_full_marks_except_pending(graded):
    r = graded["solution"]
    assert failing(r) == set(), [(c["id"], c["message"]) for c in r["checks"] if c["status"] != "passed"]
    assert r["score"] == r["max_score"] - r["pending_points"]
    pending = {c["id"] for c in r["checks"] if c["status"] == "pending"}
    import torch

    assert pending == (set() if torch.cuda.is_available() else {"training.throughput_against_reference", "training.peak_memory"})


def test_untouched_release_scores_zero(graded):
    r = graded["untouched"]
    assert r["status"] == "graded" and r["score"] == 0


@pytest.mark.parametrize("student", sorted(MUTANTS))
def test_mutant_fails_exactly_its_checks(graded, student):
    _, expected, flags = MUTANTS[student]
    r = graded[student]
    assert failing(r) == expected
    assert flags <= {f["kind"] for f in r["flags"]}
    for c in r["checks"]:
        if c["id"] in expected:
            assert c["message"], f"{c['id']} failed without a message"
