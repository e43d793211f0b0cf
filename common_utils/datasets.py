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


# Every HELD_OUT-th row (counting from 0, the last of each group) is held out: the tiny models'
# pretraining never sees it, and graders evaluate learning on it.
HELD_OUT = 8
SPLITS = ("all", "train", "held_out")


def split_rows(rows: list[dict], split: str = "all") -> list[dict]:
    """The rows of one split: ``train`` (7 of 8), ``held_out`` (1 of 8) or ``all``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if split == "all":
        return list(rows)
    keep = (lambda i: i % HELD_OUT == HELD_OUT - 1) if split == "held_out" else (lambda i: i % HELD_OUT != HELD_OUT - 1)
    return [row for i, row in enumerate(rows) if keep(i)]


def load_course_dataset(name: str, profile: str | None = None, limit: int | None = None,
                        split: str = "all") -> list[dict]:
    """Rows of a course dataset as dicts (optionally one split); refuses an unknown name with the valid ones."""
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
    rows = split_rows(rows, split)
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
