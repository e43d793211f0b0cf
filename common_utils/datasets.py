"""The course's datasets: shipped JSONL under ``tiny``, the hub dataset under ``full``."""
from __future__ import annotations

import json
from pathlib import Path

from common_utils.profiles import get_profile

DATA_DIR = Path(__file__).resolve().parent / "data"
# name -> the hub dataset used under `full` (guanaco-style instruction data for QLoRA).
FULL = {
    "instructions": ("timdettmers/openassistant-guanaco", "train"),
    "sentiment": ("stanfordnlp/sst2", "train"),
    "paraphrase": ("nyu-mll/glue", "train"),
    "summaries": ("abisee/cnn_dailymail", "train"),
    "preferences": ("Anthropic/hh-rlhf", "train"),
}


def load_course_dataset(name: str, profile: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows of a course dataset as dicts; refuses an unknown name with the valid ones."""
    if name not in FULL:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(FULL)}")
    if get_profile(profile) == "full":
        from datasets import load_dataset

        hub_id, split = FULL[name]
        rows = [dict(r) for r in load_dataset(hub_id, split=split)]
    else:
        path = DATA_DIR / f"{name}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; run scripts/make_datasets.py to make it")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit is not None else rows
