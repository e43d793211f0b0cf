"""The course's datasets: shipped JSONL under ``tiny`` (and under ``full`` with random weights,
whose shipped tokenizer they fit), the pinned hub dataset under ``full``."""
from __future__ import annotations

import json
from pathlib import Path

from common_utils.profiles import get_profile, get_weights

DATA_DIR = Path(__file__).resolve().parent / "data"
# name -> the hub dataset used under `full`: (id, config name or None, split, pinned commit or
# None). A None commit is resolved once by `course models pin` on a machine that reaches the hub
# (it writes the hash it got into PINS_FILE); grading refuses an unpinned dataset.
FULL = {
    "instructions": ("timdettmers/openassistant-guanaco", None, "train", None),
    "sentiment": ("stanfordnlp/sst2", None, "train", None),
    "paraphrase": ("nyu-mll/glue", "mrpc", "train", None),
    "summaries": ("abisee/cnn_dailymail", "3.0.0", "train", None),
    "preferences": ("Anthropic/hh-rlhf", None, "train", "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa"),
}
PINS_FILE = DATA_DIR / "full_pins.json"  # commits resolved by `course models pin`, by dataset id


def _guanaco(row: dict) -> dict | None:
    """The first exchange of an OpenAssistant-Guanaco conversation ("### Human: ... ### Assistant: ...")."""
    text = row["text"]
    if "### Human:" not in text or "### Assistant:" not in text:
        return None
    human = text.split("### Human:", 1)[1].split("### Assistant:", 1)[0].strip()
    answer = text.split("### Assistant:", 1)[1].split("### Human:", 1)[0].strip()
    return {"instruction": human, "input": "", "output": answer} if human and answer else None


def _hh_rlhf(row: dict) -> dict | None:
    """A hh-rlhf pair ("\n\nHuman: ...\n\nAssistant: ..." twice) as the dialogue before the last
    assistant turn and the two last replies."""
    marker = "\n\nAssistant:"
    chosen, rejected = row["chosen"], row["rejected"]
    if marker not in chosen or marker not in rejected:
        return None
    prompt, chosen_reply = chosen.rsplit(marker, 1)
    rejected_prompt, rejected_reply = rejected.rsplit(marker, 1)
    if prompt != rejected_prompt or not chosen_reply.strip() or not rejected_reply.strip():
        return None
    return {"prompt": prompt.replace("\n\nHuman:", "\n").strip(), "chosen": chosen_reply.strip(),
            "rejected": rejected_reply.strip()}


# name -> a hub row in the shipped JSONL's schema (None drops the row): notebooks read the same
# fields under every profile.
HUB_ROWS = {
    "instructions": _guanaco,
    "sentiment": lambda r: {"text": r["sentence"], "label": int(r["label"]), "lang": "en"},
    "paraphrase": lambda r: {"sentence1": r["sentence1"], "sentence2": r["sentence2"], "label": int(r["label"])},
    "summaries": lambda r: {"document": r["article"], "summary": r["highlights"]},
    "preferences": _hh_rlhf,
}


def hub_rows(name: str, raw) -> list[dict]:
    """Rows of the hub dataset behind ``name`` in the shipped schema; rows that do not fit it are dropped
    (an empty result is refused: the mapping no longer fits the pinned dataset)."""
    rows = [mapped for r in raw if (mapped := HUB_ROWS[name](dict(r))) is not None]
    if not rows:
        raise RuntimeError(f"no row of the hub dataset behind {name!r} fits the course's schema")
    return rows


def full_dataset(name: str) -> dict:
    """The hub dataset behind ``name`` under ``full``: id, config, split and pinned revision."""
    hub_id, config, split, revision = FULL[name]
    if revision is None and PINS_FILE.is_file():
        revision = json.loads(PINS_FILE.read_text()).get(hub_id)
    return {"id": hub_id, "config": config, "split": split, "revision": revision}


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
    if get_profile(profile) == "full" and get_weights(profile) == "hub":
        hub = full_dataset(name)
        if hub["revision"] is None:
            raise RuntimeError(f"the full-profile dataset {hub['id']} has no pinned revision; run `course models pin` "
                               f"where the hub is reachable, or COURSE_WEIGHTS=random for the shipped data")
        from datasets import load_dataset

        raw = load_dataset(hub["id"], hub["config"], split=hub["split"], revision=hub["revision"])
        rows = hub_rows(name, raw)
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
