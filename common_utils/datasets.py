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


EVAL_DIR = DATA_DIR / "eval"
EVAL_TASK_DIR = EVAL_DIR / "lm_eval_task"  # the lm-evaluation-harness task over mc_task.jsonl
EVAL_SETS = ("mc_task", "summary_pairs", "web_corpus")


def load_eval_dataset(name: str) -> list[dict]:
    """Rows of a lab dataset of module 04 (the same under every profile: they are the lab's material)."""
    if name not in EVAL_SETS:
        raise ValueError(f"unknown evaluation dataset {name!r}; valid: {', '.join(EVAL_SETS)}")
    path = EVAL_DIR / f"{name}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run scripts/make_eval_datasets.py to make it")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
