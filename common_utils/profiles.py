"""Which model profile a run uses: ``tiny`` (default; configs, fixed seeds, shipped data, CPU)
or ``full`` (the real hub models, GPU runners), and where ``full`` takes its weights from.

``full`` has two weight sources, chosen by $COURSE_WEIGHTS:

- ``hub`` (default): the pinned hub checkpoints, from the local cache that
  ``course models prefetch`` filled (grading itself runs offline);
- ``random``: the real architecture from the config the repository ships, random weights, the
  shipped tokenizer and data. Nothing is downloaded, so shapes, parameter counts, memory and
  throughput can be checked on a GPU machine that reaches no hub. What the model says is noise.
"""
from __future__ import annotations

import os

PROFILES = ("tiny", "full")
WEIGHTS = ("hub", "random")


def get_profile(profile: str | None = None) -> str:
    """The profile: the argument, else $COURSE_PROFILE, else ``tiny``; anything else is refused."""
    chosen = profile if profile is not None else os.environ.get("COURSE_PROFILE", "tiny")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r} (from {'the argument' if profile else 'COURSE_PROFILE'}); "
                         f"valid profiles: {', '.join(PROFILES)}")
    return chosen


def get_weights(profile: str | None = None) -> str:
    """Where the profile's weights come from: ``shipped`` for ``tiny``; for ``full``,
    $COURSE_WEIGHTS (``hub`` unless set; anything else is refused)."""
    if get_profile(profile) == "tiny":
        return "shipped"
    chosen = os.environ.get("COURSE_WEIGHTS", "hub").strip().lower()
    if chosen not in WEIGHTS:
        raise ValueError(f"unknown weight source {chosen!r} (from COURSE_WEIGHTS); valid: {', '.join(WEIGHTS)}")
    return chosen
