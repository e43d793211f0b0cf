"""result.json: the contract between grading, feedback, reports and exports (see DESIGN.md).

A score is never stored on its own: ``score`` is computed from the checks when the result is
built, and exports recompute nothing. An ungraded submission has ``status: "ungraded"`` and a
``reason``; it is never a zero.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = 1
GRADED, UNGRADED = "graded", "ungraded"


def environment(isolation: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    env = {"python": platform.python_version(), "isolation": isolation, "machine": platform.machine()}
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            env[name] = version(name)  # without importing: peft would drag in bitsandbytes
        except PackageNotFoundError:
            env[name] = None
    import torch

    env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    return env


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_result(*, assignment: str, student: str, checks: list[dict], flags: list[dict],
                 files: dict[str, str], grader_version: str, profile: str, isolation: str,
                 status: str = GRADED, reason: str | None = None, cells: dict | None = None,
                 duration_s: float = 0.0, peak_memory_mb: float | None = None,
                 max_score: float | None = None) -> dict:
    earned = sum(c["points"] for c in checks if c["status"] != "pending")
    total = max_score if max_score is not None else sum(c["max_points"] for c in checks)
    pending = sum(c["max_points"] for c in checks if c["status"] == "pending")
    return {
        "schema": SCHEMA,
        "assignment": assignment,
        "student": student,
        "status": status,
        "reason": reason,
        "score": round(earned, 4) if status == GRADED else None,
        "max_score": total,
        "pending_points": pending,
        "checks": checks,
        "flags": flags,
        "cells": cells or {},
        "files": files,
        "profile": profile,
        "environment": environment(isolation),
        "grader_version": grader_version,
        "graded_at": now(),
        "duration_s": round(duration_s, 2),
        "peak_memory_mb": peak_memory_mb,
    }


def write_json_atomic(path: Path, data: dict) -> None:
    """Write then rename: a crash leaves the previous file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
