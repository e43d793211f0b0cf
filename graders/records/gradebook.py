"""The SQLite gradebook: one transaction per submission, every re-grade kept as history.

Rows are never updated in place except to mark an older row superseded, in the same
transaction that inserts its successor; a crash between submissions loses nothing recorded.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path

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
