"""The module-04 datasets: rebuilt byte for byte by their script, and holding what the lab needs."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from common_utils.datasets import EVAL_TASK_DIR, load_eval_dataset


def _script():
    spec = importlib.util.spec_from_file_location("make_eval_datasets", Path("scripts/make_eval_datasets.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_eval_datasets_are_what_the_script_makes(tmp_path):
    script = _script()
    script.main(tmp_path)
    made = sorted(tmp_path.glob("*.jsonl"))
    assert [p.name for p in made] == ["mc_task.jsonl", "summary_pairs.jsonl", "web_corpus.jsonl"]
    for path in made:
        assert path.read_bytes() == (script.OUT / path.name).read_bytes(), f"run scripts/make_eval_datasets.py: {path.name} drifted"


def test_mc_task_has_both_languages_and_a_valid_gold():
    rows = load_eval_dataset("mc_task")
    assert {r["lang"] for r in rows} == {"en", "zh"}
    assert all(0 <= r["gold"] < len(r["choices"]) == 4 and len(set(r["choices"])) == 4 for r in rows)


def test_web_corpus_plants_exact_and_near_duplicates():
    texts = [r["text"] for r in load_eval_dataset("web_corpus")]
    from graders.suites.evaluation_oracles import char_shingles, jaccard, normalize_text

    assert len({normalize_text(t) for t in texts}) < len(set(texts)), "no duplicates that differ only in case, spacing, punctuation"
    sets = [char_shingles(t, 5) for t in texts]
    near = sum(0.7 <= jaccard(sets[i], sets[j]) < 1.0 for i in range(len(sets)) for j in range(i))
    assert near >= 10


def test_lm_eval_task_reads_the_shipped_rows():
    pytest.importorskip("datasets")
    spec = importlib.util.spec_from_file_location("course_mc_utils", EVAL_TASK_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.load()["test"].to_list() == load_eval_dataset("mc_task")


def test_unknown_eval_dataset_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="mc_task"):
        load_eval_dataset("nope")
