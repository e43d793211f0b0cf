"""Which model profile a run uses: ``tiny`` (default; configs, fixed seeds, shipped data, CPU)
or ``full`` (the real hub models, GPU runners)."""
from __future__ import annotations

import os

PROFILES = ("tiny", "full")


def get_profile(profile: str | None = None) -> str:
    """The profile: the argument, else $COURSE_PROFILE, else ``tiny``; anything else is refused."""
    chosen = profile if profile is not None else os.environ.get("COURSE_PROFILE", "tiny")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r} (from {'the argument' if profile else 'COURSE_PROFILE'}); "
                         f"valid profiles: {', '.join(PROFILES)}")
    return chosen
