"""The effective result: stored checks + TA overrides + late penalty, computed in one place.

Feedback, the dashboard and every export read results through ``effective_result``; nothing
stores an effective score, so reverting an override or fixing a policy needs no re-grade.
The function is idempotent: it starts from each check's original points every time.
"""
from __future__ import annotations

import copy

from graders.records.result import GRADED


def effective_result(result: dict, overrides: list[dict] = (), late: dict | None = None) -> dict:
    """A copy of ``result`` with overrides applied to its checks and the late penalty to its score.

    ``overrides`` are active gradebook overrides ({check, points, comment, by, at}); one naming a
    check the result lacks is listed under ``orphan_overrides`` and changes nothing. ``late`` is
    a ``LatePolicy.assess`` record; by default the one the engine stored in ``result["late"]``.
    Adds ``raw_score`` (before the penalty), ``late_deduction`` and ``overrides``.
    """
    r = copy.deepcopy(result)
    by_check = {o["check"]: o for o in overrides if o.get("assignment", r["assignment"]) == r["assignment"]}
    applied = []
    for c in r["checks"]:
        c["points"] = c.pop("original_points", c["points"])
        c.pop("override", None)
        o = by_check.pop(c["id"], None)
        if o is not None:
            c["original_points"] = c["points"]
            c["points"] = o["points"]
            c["override"] = {k: o.get(k) for k in ("points", "comment", "by", "at")}
            applied.append({"check": c["id"], **c["override"], "original_points": c["original_points"]})
    r["overrides"] = applied
    r["orphan_overrides"] = sorted(by_check)
    late = late if late is not None else result.get("late")
    r["late"] = late
    if r["status"] != GRADED:
        r["score"] = r["raw_score"] = r["late_deduction"] = None
        return r
    # An override of a pending check is a TA's grade for it (e.g. run by hand on a GPU): it counts.
    counted = [c for c in r["checks"] if c["status"] != "pending" or "override" in c]
    r["pending_points"] = sum(c["max_points"] for c in r["checks"] if c not in counted)
    raw = round(sum(c["points"] for c in counted), 4)
    fraction = (late or {}).get("penalty_fraction", 0.0) or 0.0
    deduction = round(raw * fraction, 4)
    r["raw_score"], r["late_deduction"], r["score"] = raw, deduction, round(raw - deduction, 4)
    return r
