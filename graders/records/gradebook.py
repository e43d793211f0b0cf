"""The SQLite gradebook: one transaction per submission, every re-grade kept as history.

Rows are never updated in place except to mark an older row superseded, in the same
transaction that inserts its successor; a crash between submissions loses nothing recorded.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from graders.errors import CourseError
from graders.records.effective import effective_result
from graders.records.result import now

SCHEMA = """
CREATE TABLE IF NOT EXISTS grades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    files_sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('graded', 'ungraded')),
    reason TEXT,
    score REAL,
    max_score REAL NOT NULL,
    pending_points REAL NOT NULL,
    result_json TEXT NOT NULL,
    superseded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS grades_current ON grades (assignment, student, superseded);
-- A TA's points for one check, applied on read (graders.records.effective); a revert keeps the row.
CREATE TABLE IF NOT EXISTS overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    check_id TEXT NOT NULL,
    points REAL NOT NULL,
    comment TEXT NOT NULL,
    by TEXT NOT NULL,
    at TEXT NOT NULL,
    reverted_by TEXT,
    reverted_at TEXT
);
CREATE INDEX IF NOT EXISTS overrides_active ON overrides (assignment, student, reverted_at);
"""


class Gradebook:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gradebook":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def record(self, result: dict) -> int:
        """Store one result as the current grade of its (assignment, student); return its row id."""
        with self.transaction() as db:
            db.execute("UPDATE grades SET superseded = 1 WHERE assignment = ? AND student = ? AND superseded = 0",
                       (result["assignment"], result["student"]))
            cur = db.execute(
                "INSERT INTO grades (assignment, student, graded_at, grader_version, files_sha256, status, reason,"
                " score, max_score, pending_points, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result["assignment"], result["student"], result["graded_at"], result["grader_version"],
                 json.dumps(result["files"], sort_keys=True), result["status"], result.get("reason"),
                 result["score"], result["max_score"], result["pending_points"],
                 json.dumps(result, ensure_ascii=False, sort_keys=True)))
            return int(cur.lastrowid)

    def current(self, assignment: str, student: str) -> dict | None:
        row = self.db.execute("SELECT result_json FROM grades WHERE assignment = ? AND student = ? AND superseded = 0",
                              (assignment, student)).fetchone()
        return json.loads(row["result_json"]) if row else None

    def current_all(self, assignment: str) -> list[dict]:
        rows = self.db.execute("SELECT result_json FROM grades WHERE assignment = ? AND superseded = 0 ORDER BY student",
                               (assignment,)).fetchall()
        return [json.loads(r["result_json"]) for r in rows]

    def history(self, assignment: str, student: str) -> list[dict]:
        rows = self.db.execute("SELECT result_json FROM grades WHERE assignment = ? AND student = ? ORDER BY id",
                               (assignment, student)).fetchall()
        return [json.loads(r["result_json"]) for r in rows]

    def is_current(self, assignment: str, student: str, files: dict, grader_version: str) -> bool:
        """True when the stored grade was made from these exact files by this grader version."""
        row = self.db.execute(
            "SELECT files_sha256, grader_version, status FROM grades WHERE assignment = ? AND student = ? "
            "AND superseded = 0", (assignment, student)).fetchone()
        return bool(row) and row["status"] == "graded" and row["grader_version"] == grader_version \
            and row["files_sha256"] == json.dumps(files, sort_keys=True)

    # --- overrides: who changed which check's points, when; applied on read ------------------
    def add_override(self, assignment: str, student: str, check: str, points: float, comment: str, by: str) -> dict:
        """Record a TA's points for one check of the current grade; an earlier active override of
        the same check is reverted in the same transaction. Refuses (CourseError, nothing written)
        an unknown student or check, or points outside 0..max_points."""
        with self.transaction() as db:
            target = self._check_of(assignment, student, check)
            if not 0 <= points <= target["max_points"]:
                raise CourseError(f"--points {points:g} for {check}: give 0..{target['max_points']:g}")
            if not comment.strip():
                raise CourseError("--comment is empty: say why the points change (the student reads it)")
            at = now()
            db.execute("UPDATE overrides SET reverted_by = ?, reverted_at = ? WHERE assignment = ? AND student = ?"
                       " AND check_id = ? AND reverted_at IS NULL", (by, at, assignment, student, check))
            db.execute("INSERT INTO overrides (assignment, student, check_id, points, comment, by, at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)", (assignment, student, check, float(points), comment, by, at))
        return {"check": check, "points": float(points), "comment": comment, "by": by, "at": at}

    def revert_override(self, assignment: str, student: str, check: str, by: str) -> None:
        """Mark the active override of one check reverted (the row stays as history)."""
        with self.transaction() as db:
            cur = db.execute("UPDATE overrides SET reverted_by = ?, reverted_at = ? WHERE assignment = ? AND student = ?"
                             " AND check_id = ? AND reverted_at IS NULL", (by, now(), assignment, student, check))
            if cur.rowcount == 0:
                raise CourseError(f"no active override of {check} for {student} in {assignment}; nothing to revert")

    def overrides(self, assignment: str, student: str | None = None, include_reverted: bool = False) -> list[dict]:
        sql = "SELECT * FROM overrides WHERE assignment = ?"
        params: list = [assignment]
        if student is not None:
            sql, params = sql + " AND student = ?", params + [student]
        if not include_reverted:
            sql += " AND reverted_at IS NULL"
        rows = self.db.execute(sql + " ORDER BY id", params).fetchall()
        return [{"assignment": r["assignment"], "student": r["student"], "check": r["check_id"], "points": r["points"],
                 "comment": r["comment"], "by": r["by"], "at": r["at"], "reverted_by": r["reverted_by"],
                 "reverted_at": r["reverted_at"]} for r in rows]

    def _check_of(self, assignment: str, student: str, check: str) -> dict:
        result = self.current(assignment, student)
        if result is None:
            raise CourseError(f"no grade of {student!r} for {assignment} in {self.path}; grade first, or check the id")
        checks = {c["id"]: c for c in result["checks"]}
        if check not in checks:
            raise CourseError(f"{student}'s grade of {assignment} has no check {check!r}; its checks: "
                              f"{', '.join(checks) or 'none (ungraded)'}")
        return checks[check]

    # --- effective results: what feedback, dashboard and exports show ---------------------------
    def effective(self, assignment: str, student: str) -> dict | None:
        result = self.current(assignment, student)
        return effective_result(result, self.overrides(assignment, student)) if result else None

    def effective_all(self, assignment: str) -> list[dict]:
        by_student: dict[str, list[dict]] = {}
        for o in self.overrides(assignment):
            by_student.setdefault(o["student"], []).append(o)
        return [effective_result(r, by_student.get(r["student"], [])) for r in self.current_all(assignment)]

    # --- merge: shards' results into this gradebook ---------------------------------------------
    def versions(self, assignment: str) -> set[str]:
        """Grader versions of the current grades of one assignment."""
        rows = self.db.execute("SELECT DISTINCT grader_version FROM grades WHERE assignment = ? AND superseded = 0",
                               (assignment,)).fetchall()
        return {r["grader_version"] for r in rows}

    def merge(self, results: list[dict]) -> dict:
        """Add results graded elsewhere, in one transaction. A result already here (same student,
        graded_at, grader version and files) is skipped, so merging twice changes nothing; per
        student the newest graded_at becomes current and older rows stay as history.
        Returns counts {added, unchanged, students}."""
        added = unchanged = 0
        touched: set[tuple[str, str]] = set()
        with self.transaction() as db:
            for r in results:
                key = (r["assignment"], r["student"], r["graded_at"], r["grader_version"],
                       json.dumps(r["files"], sort_keys=True))
                if db.execute("SELECT 1 FROM grades WHERE assignment = ? AND student = ? AND graded_at = ? AND "
                              "grader_version = ? AND files_sha256 = ?", key).fetchone():
                    unchanged += 1
                    continue
                db.execute(
                    "INSERT INTO grades (assignment, student, graded_at, grader_version, files_sha256, status, reason,"
                    " score, max_score, pending_points, result_json, superseded)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (*key, r["status"], r.get("reason"), r["score"], r["max_score"], r["pending_points"],
                     json.dumps(r, ensure_ascii=False, sort_keys=True)))
                added += 1
                touched.add((r["assignment"], r["student"]))
            for assignment, student in touched:
                newest = db.execute("SELECT id FROM grades WHERE assignment = ? AND student = ? "
                                    "ORDER BY graded_at DESC, id DESC LIMIT 1", (assignment, student)).fetchone()
                db.execute("UPDATE grades SET superseded = (id != ?) WHERE assignment = ? AND student = ?",
                           (newest["id"], assignment, student))
        return {"added": added, "unchanged": unchanged, "students": len(touched)}
