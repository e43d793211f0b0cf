"""``course models``: the ``full`` profile's checkpoints and datasets, ready for offline grading.

    course models counts [--family F ...]     # parameter counts of every method, on the meta device
    course models prefetch                    # fill the hub cache at the pinned commits (needs the hub)
    course models pin                         # resolve unpinned datasets once, write their commits

Grading never downloads (it runs with HF_HUB_OFFLINE=1): a GPU runner is prefetched once, where
the hub is reachable, and grades offline afterwards. A runner that reaches no hub grades with
COURSE_WEIGHTS=random (the real architectures, random weights) for shapes, counts, memory and speed.
"""
from __future__ import annotations

import argparse
import json
import sys

from graders.errors import CourseError

# What `counts` reports: each method on the family it is taught on, with the course defaults
# (BERT's LoRA targets its own attention names).
COUNTED = {
    "llama": ["lora", "prompt_tuning", "prefix_tuning", "p_tuning", "p_tuning_v2", "ia3", "bottleneck"],
    "bert": ["lora", "bitfit", "bottleneck", "prompt_tuning"],
    "gpt2": ["bitfit", "lora"],
    "t5": ["lora", "prompt_tuning"],
}
OVERRIDES = {("bert", "lora"): {"target_modules": ["query", "value"]}, ("gpt2", "lora"): {"target_modules": ["c_attn"]},
             ("t5", "lora"): {"target_modules": ["q", "v"]}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    counts = sub.add_parser("counts", help="trainable and total parameters of every method on the full architectures")
    counts.add_argument("--family", action="append", choices=sorted(COUNTED), help="only these families")
    counts.add_argument("--json", action="store_true", help="print JSON instead of a table")
    prefetch = sub.add_parser("prefetch", help="download the pinned full-profile checkpoints and datasets")
    prefetch.add_argument("--profile", default="full", choices=["full"], help="the profile to prefetch (full)")
    prefetch.add_argument("--models-only", action="store_true", help="skip the datasets")
    sub.add_parser("pin", help="resolve the datasets that have no pinned commit and record them")


def count_table(families: list[str] | None = None) -> list[dict]:
    from common_utils.peft_setup import counts_on_meta

    rows = []
    for family in families or list(COUNTED):
        base = counts_on_meta(family, None)
        rows.append({"family": family, "method": "(base)", **base})
        for method in COUNTED[family]:
            rows.append({"family": family, "method": method,
                         **counts_on_meta(family, method, **OVERRIDES.get((family, method), {}))})
    return rows


def _counts(args) -> int:
    rows = count_table(args.family)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="full architectures, counted on the meta device")
    for column in ("family", "method", "trainable", "total", "trainable %"):
        table.add_column(column, justify="right" if column not in ("family", "method") else "left")
    for row in rows:
        table.add_row(row["family"], row["method"], f"{row['trainable']:,}", f"{row['total']:,}",
                      f"{100 * row['trainable'] / row['total']:.4f}")
    Console().print(table)
    return 0


def _targets() -> tuple[list[dict], list[dict]]:
    from common_utils.datasets import FULL, full_dataset
    from common_utils.models import FAMILIES

    models = [{"id": spec["full"].hub_id, "revision": spec["full"].revision} for spec in FAMILIES.values()]
    datasets = [full_dataset(name) for name in FULL]
    return models, datasets


def _prefetch(args) -> int:
    from huggingface_hub import snapshot_download

    from common_utils.models import shared_cache

    models, datasets = _targets()
    cache = shared_cache() / "hf" / "hub"  # what graded kernels read as HF_HOME/hub (graders/engine/grade_one.py)
    wanted = [("model", m) for m in models] + ([] if args.models_only else [("dataset", d) for d in datasets])
    unpinned = [t["id"] for _, t in wanted if not t["revision"]]
    if unpinned:
        raise CourseError(f"no pinned commit for {', '.join(unpinned)}; run `course models pin` first")
    for i, (kind, target) in enumerate(wanted, 1):
        print(f"[{i}/{len(wanted)}] {kind} {target['id']} @ {target['revision'][:12]}", flush=True)
        snapshot_download(target["id"], revision=target["revision"], repo_type=kind, cache_dir=str(cache),
                          allow_patterns=None if kind == "dataset" else ["*.json", "*.safetensors", "*.model", "*.txt"])
    print(f"prefetched {len(wanted)} repositories into {cache}; grading with --profile full now runs offline")
    return 0


def _pin(args) -> int:
    from huggingface_hub import HfApi

    from common_utils.datasets import PINS_FILE

    _, datasets = _targets()
    pins = json.loads(PINS_FILE.read_text()) if PINS_FILE.is_file() else {}
    api = HfApi()
    for target in datasets:
        if target["revision"]:
            continue
        sha = api.dataset_info(target["id"]).sha
        pins[target["id"]] = sha
        print(f"pinned {target['id']} @ {sha}")
    PINS_FILE.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS_FILE}; commit it so every runner grades the same data")
    return 0


def run(args) -> int:
    try:
        return {"counts": _counts, "prefetch": _prefetch, "pin": _pin}[args.action](args)
    except OSError as err:  # the hub cannot be reached
        print(f"course models {args.action}: {err}", file=sys.stderr)
        return 1
