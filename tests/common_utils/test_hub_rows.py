"""Hub rows under ``full`` become the shipped JSONL's schema (common_utils.datasets.hub_rows).

The rows below are written in each pinned hub dataset's published schema (no hub here): the
notebooks read the same fields under every profile.
"""
from __future__ import annotations

import pytest

from common_utils.datasets import DATA_DIR, FULL, HUB_ROWS, hub_rows


def _shipped_keys(name: str) -> set:
    import json

    return set(json.loads((DATA_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[0]))


HUB = {
    "instructions": [{"text": "### Human: What is 2 + 2?### Assistant: 4.### Human: And 3 + 3?### Assistant: 6."},
                     {"text": "no markers at all"}],
    "sentiment": [{"idx": 0, "sentence": "a gorgeous film ", "label": 1}],
    "paraphrase": [{"sentence1": "He left.", "sentence2": "He went away.", "label": 1, "idx": 3}],
    "summaries": [{"article": "Long news text.", "highlights": "Short.", "id": "abc"}],
    "preferences": [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: An apple.",
                     "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: No."},
                    {"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: C\n\nAssistant: D"}],
}


def test_every_full_dataset_has_a_mapping():
    assert set(HUB_ROWS) == set(FULL) == set(HUB)


@pytest.mark.parametrize("name", sorted(HUB))
def test_hub_rows_have_the_shipped_schema(name):
    rows = hub_rows(name, HUB[name])
    assert rows and all(set(r) == _shipped_keys(name) for r in rows)


def test_guanaco_takes_the_first_exchange_and_drops_rows_without_one():
    assert hub_rows("instructions", HUB["instructions"]) == [{"instruction": "What is 2 + 2?", "input": "", "output": "4."}]


def test_hh_rlhf_splits_at_the_last_assistant_turn_and_drops_pairs_of_different_dialogues():
    (row,) = hub_rows("preferences", HUB["preferences"])
    assert row["chosen"] == "An apple." and row["rejected"] == "No."
    assert row["prompt"].endswith("Name a fruit.") and "Assistant: Hello!" in row["prompt"]


def test_labels_are_ints_and_a_dataset_with_no_fitting_row_is_refused():
    assert hub_rows("sentiment", [{"sentence": "x", "label": True}])[0]["label"] == 1
    with pytest.raises(RuntimeError, match="fits the course's schema"):
        hub_rows("instructions", [{"text": "nothing"}])
