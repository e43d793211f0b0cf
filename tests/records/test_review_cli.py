from graders.cli.main import main
from graders.records.gradebook import Gradebook
from tests.records.classroom import ASSIGNMENT, write_class


def review(tmp_path, *args):
    return main(["review", ASSIGNMENT, *args, "--results", str(tmp_path), "--lang", "en"])


def test_review_overrides_shows_in_feedback_and_reverts(tmp_path, capsys):
    write_class(tmp_path)
    feedback = tmp_path / ASSIGNMENT / "bob" / "feedback.html"
    assert review(tmp_path, "bob", "basics.loop", "--points", "3", "--comment", "typo only", "--by", "ta-wang") == 0
    assert "score now 5 / 10" in capsys.readouterr().out
    html = feedback.read_text()
    assert "Manual review" in html and "ta-wang" in html and "typo only" in html and "<strong>5 / 10</strong>" in html
    assert "typo only" in (tmp_path / ASSIGNMENT / "bob" / "feedback.md").read_text()
    assert review(tmp_path, "bob", "basics.loop", "--revert", "--by", "ta-wang") == 0
    assert "Manual review" not in feedback.read_text() and "<strong>2 / 10</strong>" in feedback.read_text()


def test_review_of_a_missing_check_is_a_usage_error_and_changes_nothing(tmp_path, capsys):
    write_class(tmp_path)
    before = (tmp_path / ASSIGNMENT / "bob" / "feedback.html").read_text()
    assert review(tmp_path, "bob", "basics.nope", "--points", "1", "--comment", "x") == 2
    assert "has no check 'basics.nope'" in capsys.readouterr().err
    with Gradebook(tmp_path / "gradebook.sqlite") as gb:
        assert gb.overrides(ASSIGNMENT, include_reverted=True) == []
    assert (tmp_path / ASSIGNMENT / "bob" / "feedback.html").read_text() == before


def test_review_needs_points_or_revert(tmp_path, capsys):
    write_class(tmp_path)
    assert review(tmp_path, "bob", "basics.loop", "--comment", "x") == 2
    assert "--revert" in capsys.readouterr().err
