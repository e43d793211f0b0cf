"""Late policy: a due date and a penalty per started day, read from ``assignment.toml``.

    [late]
    due = "2026-12-01T23:59:00+08:00"   # ISO 8601 with a UTC offset; a naive time is refused
    penalty_per_day = 0.1                # fraction of the earned score lost per started day late
    max_days = 5                         # later than this many days: the score is 0

The submission time comes from nbgrader's ``timestamp.txt`` in the submission folder
("2026-12-02 10:00:00.000000 UTC"). The engine stores ``late_penalty(...)`` in result.json as
``result["late"]``; ``graders.records.effective`` applies it. A missing timestamp is not late.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from graders.errors import CourseError

TIMESTAMP_FILE = "timestamp.txt"


@dataclass(frozen=True)
class LatePolicy:
    due: datetime
    penalty_per_day: float = 0.1  # a common syllabus rule: 10 % per started day
    max_days: int = 5  # after this, nothing is accepted for credit

    def __post_init__(self) -> None:
        if self.due.tzinfo is None:
            raise CourseError(f"[late] due {self.due.isoformat()!r} has no UTC offset; write e.g. "
                              "2026-12-01T23:59:00+08:00")
        if not 0 <= self.penalty_per_day <= 1:
            raise CourseError(f"[late] penalty_per_day must be in 0..1, got {self.penalty_per_day!r}")
        if self.max_days < 0:
            raise CourseError(f"[late] max_days must be 0 or more, got {self.max_days!r}")

    def assess(self, submitted_at: datetime) -> dict:
        """The late record of one submission: days late (started days) and the fraction lost."""
        seconds = (submitted_at - self.due).total_seconds()
        days = max(0, math.ceil(seconds / 86400))
        fraction = 1.0 if days > self.max_days else min(1.0, round(days * self.penalty_per_day, 6))
        return {"submitted_at": submitted_at.astimezone(timezone.utc).isoformat(timespec="seconds"),
                "due": self.due.isoformat(timespec="seconds"), "days_late": days,
                "penalty_fraction": fraction, "penalty_per_day": self.penalty_per_day, "max_days": self.max_days}


def policy_from_settings(settings: dict) -> LatePolicy | None:
    """The ``[late]`` table of an assignment's settings, checked; None when there is none."""
    table = settings.get("late")
    if not table:
        return None
    unknown = set(table) - {"due", "penalty_per_day", "max_days"}
    if unknown or "due" not in table:
        raise CourseError(f"[late] needs 'due' and may have penalty_per_day, max_days; got {sorted(table)}")
    due = table["due"]
    if isinstance(due, str):
        try:
            due = datetime.fromisoformat(due)
        except ValueError:
            raise CourseError(f"[late] due {due!r} is not an ISO 8601 time like 2026-12-01T23:59:00+08:00") from None
    return LatePolicy(due=due, penalty_per_day=float(table.get("penalty_per_day", 0.1)),
                      max_days=int(table.get("max_days", 5)))


def read_timestamp(folder: Path) -> datetime | None:
    """nbgrader's ``timestamp.txt``: "2026-12-02 10:00:00.000000 UTC" (the zone name may be absent)."""
    path = Path(folder) / TIMESTAMP_FILE
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").strip()
    stamp = text.removesuffix(" UTC").strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(stamp, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        raise CourseError(f"{path}: {text!r} is not a timestamp like '2026-12-02 10:00:00.000000 UTC'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def late_penalty(settings: dict, folder: Path) -> dict | None:
    """What the engine stores as ``result["late"]``: None without a policy or a timestamp,
    else ``LatePolicy.assess`` of the submission time (days_late 0 when on time)."""
    policy = policy_from_settings(settings)
    submitted = read_timestamp(folder) if policy else None
    return policy.assess(submitted) if policy and submitted else None
