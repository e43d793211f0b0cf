"""feedback.md and feedback.html for one result: score, every check, flags, cell errors.

A hidden check shows its name, points, status and hint only; its message is already reduced to
the hint by the plugin, and nothing here reads a suite's source.
"""
from __future__ import annotations

from pathlib import Path

import jinja2

from graders.records.result import write_text_atomic
from graders.reports.flag_text import explain
from graders.reports.labels import LABELS, STATUS_SVG, STATUS_TEXT

_env = jinja2.Environment(loader=jinja2.PackageLoader("graders.reports", "templates"),
                          autoescape=jinja2.select_autoescape(["html.j2"]), keep_trailing_newline=True,
                          trim_blocks=False)
_env.filters["mdcell"] = lambda s: " ".join(str(s or "").split()).replace("|", "\\|")
_env.filters["mdcode"] = lambda s: str(s or "").replace("`", "'")[:300]


def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{x:g}" if isinstance(x, (int, float)) else str(x)


def cell_errors(result: dict) -> list[dict]:
    """Cells that did not run cleanly, each trimmed to its last error line."""
    out = []
    for notebook, cells in sorted(result.get("cells", {}).items()):
        for cell in cells:
            if cell.get("status") != "ok":
                out.append({"notebook": notebook, "cell": cell.get("cell", "?"), "status": cell.get("status"),
                            "error": cell.get("error", "")})
    return out


def render(result: dict, fmt: str, lang: str = "zh") -> str:
    template = _env.get_template(f"feedback.{fmt}.j2")
    marks = STATUS_SVG if fmt == "html" else STATUS_TEXT
    return template.render(r=result, L=LABELS[lang], lang=lang, icon=marks, fmt=_fmt,
                           errors=cell_errors(result), explain=lambda flag: explain(flag, lang))


def write_feedback(result: dict, folder: Path, lang: str = "zh") -> list[Path]:
    written = []
    for fmt in ("md", "html"):
        path = folder / f"feedback.{fmt}"
        write_text_atomic(path, render(result, fmt, lang))
        written.append(path)
    return written
