import json
import sqlite3

import pytest

from graders.cli.main import main
from graders.engine.batch import shard_of
from graders.errors import CourseError
from graders.records.gradebook import Gradebook
from graders.records.merge import merge_shards
from graders.records.result import write_json_atomic
from tests.records.classroom import ASSIGNMENT, klass, result, write_class


def shards(tmp_path, results=None, count=2):
    """Split a class the way `course grade --shard I/N` does and write each shard's --out folder."""
    folders = []
    for i in range(count):
        mine = [r for r in (results or klass()) if shard_of(r["student"], count) == i]
        folders.append(write_class(tmp_path / f"shard{i}", mine))
    return folders


def dump(out):
    path = out / "gradebook.sqlite"
    if not path.exists():
        return None
    db = sqlite3.connect(path)
    return db.execute("SELECT student, graded_at, superseded, score FROM grades ORDER BY id").fetchall()


def test_merge_combines_shards_and_again_changes_nothing(tmp_path):
    s = shards(tmp_path)
    out = tmp_path / "merged"
    first = merge_shards(s, out)
    assert (first["added"], first["students"]) == (4, 4)
    before = dump(out)
    again = merge_shards(s + [s[0]], out)
    assert (again["added"], again["unchanged"]) == (0, 4 + len(list((s[0] / ASSIGNMENT).iterdir())))
    assert dump(out) == before
    with Gradebook(out / "gradebook.sqlite") as gb:
        assert [r["student"] for r in gb.current_all(ASSIGNMENT)] == ["alice", "bob", "carol", "dave"]
    assert (out / ASSIGNMENT / "carol" / "feedback.html").is_file()


def test_newer_regrade_wins_whichever_order_and_history_is_kept(tmp_path):
    old = write_class(tmp_path / "old", [result("bob", "partial", graded_at="2026-12-03T10:00:00+00:00")])
    new = write_class(tmp_path / "new", [result("bob", graded_at="2026-12-04T10:00:00+00:00")])
    for order, out in (([old, new], tmp_path / "a"), ([new, old], tmp_path / "b")):
        merge_shards(order, out)
        with Gradebook(out / "gradebook.sqlite") as gb:
            assert gb.current(ASSIGNMENT, "bob")["score"] == 9
            assert [r["score"] for r in gb.history(ASSIGNMENT, "bob")] in ([2, 9], [9, 2])
        assert json.loads((out / ASSIGNMENT / "bob" / "result.json").read_text())["score"] == 9
    merge_shards([old], tmp_path / "a")  # an older grade arriving later does not win
    with Gradebook(tmp_path / "a" / "gradebook.sqlite") as gb:
        assert gb.current(ASSIGNMENT, "bob")["score"] == 9


def test_merge_keeps_overrides_made_in_the_merged_gradebook(tmp_path):
    s = shards(tmp_path)
    out = tmp_path / "merged"
    merge_shards(s, out)
    with Gradebook(out / "gradebook.sqlite") as gb:
        gb.add_override(ASSIGNMENT, "bob", "basics.loop", 4, "fine", "ta")
    merge_shards(s, out)
    assert "fine" in (out / ASSIGNMENT / "bob" / "feedback.html").read_text()


def corrupt(folder):
    (folder / "result.json").write_text('{"assignment": "00-pyto')


def missing(folder):
    (folder / "result.json").unlink()


def other_assignment(folder):
    r = json.loads((folder / "result.json").read_text())
    write_json_atomic(folder / "result.json", {**r, "assignment": "01-lora"})


def other_version(folder):
    r = json.loads((folder / "result.json").read_text())
    write_json_atomic(folder / "result.json", {**r, "grader_version": "1-other"})


def odd_name(folder):
    folder.rename(folder.parent / "bob;rm -rf")


def wrong_folder(folder):
    folder.rename(folder.parent / "mallory")


def extra_assignment_folder(folder):
    (folder.parent.parent / "01-lora" / "eve").mkdir(parents=True)


@pytest.mark.parametrize("damage, message", [
    (corrupt, "half-written shard: .* is not valid JSON"),
    (missing, "half-written shard: .* has no result.json"),
    (other_assignment, "is a result of '01-lora', not '00-pytorch-basics'"),
    (other_version, "different grader versions"),
    (odd_name, "'bob;rm -rf' is not a valid student id"),
    (wrong_folder, "belongs to 'bob' but lies in folder 'mallory'"),
    (extra_assignment_folder, "holds results of 01-lora"),
])
def test_bad_shard_is_refused_and_the_gradebook_is_unchanged(tmp_path, damage, message):
    good = write_class(tmp_path / "good", [result("alice")])
    bad = write_class(tmp_path / "bad", [result("bob", "partial")])
    out = tmp_path / "merged"
    merge_shards([good], out)
    before, files = dump(out), sorted(p.name for p in (out / ASSIGNMENT).iterdir())
    damage(bad / ASSIGNMENT / "bob")
    with pytest.raises(CourseError, match=message):
        merge_shards([good, bad], out, assignment=ASSIGNMENT)
    assert dump(out) == before and sorted(p.name for p in (out / ASSIGNMENT).iterdir()) == files


def test_shards_of_another_grader_version_than_the_gradebook_are_refused(tmp_path):
    out = tmp_path / "merged"
    merge_shards([write_class(tmp_path / "v1", [result("alice")])], out)
    before = dump(out)
    with pytest.raises(CourseError, match="grader version 1-test, the shards by 2-new"):
        merge_shards([write_class(tmp_path / "v2", [result("bob", version="2-new")])], out)
    assert dump(out) == before


def test_course_gradebook_merge_then_report_end_to_end(tmp_path, capsys):
    s = shards(tmp_path, count=3)
    out = tmp_path / "merged"
    assert main(["gradebook", "merge", *map(str, s), "--out", str(out), "--lang", "en"]) == 0
    assert "merged 00-pytorch-basics: 4 new grade(s)" in capsys.readouterr().out
    assert main(["report", ASSIGNMENT, "--results", str(out), "--lang", "en"]) == 0
    page = (out / ASSIGNMENT / "report" / "index.html").read_text()
    assert "Students 4 · Graded 3 · Could not be graded 1" in page
    assert main(["gradebook", "merge", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "pass --assignment" in capsys.readouterr().err


def test_engine_shards_merge_and_report_on_cpu(tmp_path, capsys):
    """The real path: `course grade --shard I/2` on the shipped samples, merge twice, report."""
    from tests.graders.helpers import REPO

    samples = REPO / "samples" / ASSIGNMENT
    for i in range(2):
        assert main(["grade", ASSIGNMENT, str(samples), "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}"),
                     "--lang", "en"]) == 0
    out = tmp_path / "merged"
    for _ in range(2):
        assert main(["gradebook", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(out)]) == 0
    assert "0 new grade(s), 4 already there" in capsys.readouterr().out
    assert main(["report", ASSIGNMENT, "--results", str(out), "--lang", "en"]) == 0
    page = (out / ASSIGNMENT / "report" / "index.html").read_text()
    assert "Students 4 · Graded 4" in page
