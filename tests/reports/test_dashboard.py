import struct
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from graders.cli.main import main
from graders.records.gradebook import Gradebook
from graders.reports.dashboard import build_dashboard
from tests.records.classroom import ASSIGNMENT, result, write_class
from tests.reports import browser


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a["src"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def dashboard(tmp_path):
    write_class(tmp_path)
    with Gradebook(tmp_path / "gradebook.sqlite") as gb:
        gb.add_override(ASSIGNMENT, "bob", "basics.loop", 3, "typo only", "ta-wang")
    return build_dashboard(ASSIGNMENT, tmp_path, lang="en")


def test_every_image_and_link_is_a_relative_file_that_exists(dashboard):
    refs = Refs()
    refs.feed(dashboard.read_text())
    assert len(refs.imgs) == 3 and len(refs.links) == 4
    for ref in refs.imgs + refs.links:
        assert not urlparse(ref).scheme and not ref.startswith("/"), f"{ref} is not a relative link"
        assert (dashboard.parent / ref).is_file(), f"{ref} does not exist next to {dashboard}"
    for ref in refs.imgs:
        width, height = png_size(dashboard.parent / ref)
        assert width > 100 and height > 100


def test_page_shows_scores_flags_ungraded_late_and_overrides(dashboard):
    page = dashboard.read_text()
    assert "Students 4 · Graded 3 · Could not be graded 1" in page
    for text in ("tampered_cell", "the notebook timed out", "2 day(s), -1.8", "7.2 / 10", "5 / 10"):
        assert text in page
    feedback = (dashboard.parent.parent / "bob" / "feedback.html").read_text()
    assert "typo only" in feedback and "<strong>5 / 10</strong>" in feedback  # same effective grade
    dave = (dashboard.parent.parent / "dave" / "feedback.md").read_text()
    assert "Late: 2 day(s)" in dave and "deducted 1.8" in dave


def test_course_report_without_grades_is_a_usage_error(tmp_path, capsys):
    assert main(["report", ASSIGNMENT, "--results", str(tmp_path)]) == 2
    assert "no gradebook" in capsys.readouterr().err


def test_dashboard_of_an_all_ungraded_class_still_builds(tmp_path):
    write_class(tmp_path, [result("carol", "ungraded")])
    index = build_dashboard(ASSIGNMENT, tmp_path, tmp_path / "dash", lang="zh")
    assert "無法評分" in index.read_text() and (tmp_path / "dash" / "scores.png").is_file()


@pytest.mark.skipif(browser.chromium() is None,
                    reason="chromium is not installed (apt-get install chromium); the link and image checks "
                           "above still ran without a browser")
def test_dashboard_renders_in_headless_chromium(dashboard, tmp_path):
    seen = browser.render(dashboard, tmp_path / "chromium")
    assert seen["title"] == f"Class dashboard: {ASSIGNMENT}"
    assert "Students 4 · Graded 3 · Could not be graded 1" in seen["text"]
    assert "the notebook timed out" in seen["text"] and "tampered_cell" in seen["text"]
    assert len(seen["imgs"]) == 3
    for img in seen["imgs"]:
        assert img["complete"] and img["width"] > 0, f"image did not load in chromium: {img['src']}"
    assert len(seen["links"]) == 4
    for link in seen["links"]:
        assert link.startswith("file://") and Path(unquote(urlparse(link).path)).is_file(), link
