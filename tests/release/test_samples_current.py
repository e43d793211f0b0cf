"""The shipped sample classes are what scripts/make_samples.py writes from today's release: a
locked cell changed in a release (and not in the samples) would flag every honest sample as
tampered in `make demo`."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_samples_match_what_make_samples_writes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    module.main()
    written = sorted(p.relative_to(tmp_path) for p in (tmp_path / "samples").rglob("*") if p.is_file())
    assert written, "make_samples wrote nothing"
    stale = [str(p) for p in written if (REPO / p).read_bytes() != (tmp_path / p).read_bytes()]
    assert not stale, f"samples drift from the release: {stale[:4]}; run scripts/make_samples.py and commit"
