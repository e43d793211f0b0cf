"""What one graded check is: read from its ``check`` marker and checked where it is built."""
from __future__ import annotations

from dataclasses import dataclass

VISIBILITIES = ("visible", "hidden")
LANGS = ("zh", "en")


class SpecError(Exception):
    """A suite declares a check wrongly; the text names the check and its file."""


@dataclass(frozen=True)
class CheckSpec:
    id: str
    points: float
    title: dict  # {"zh": ..., "en": ...}
    hint: dict
    visibility: str = "visible"
    cell: str | None = None  # the notebook test cell whose points this check carries
    gpu: bool = False
    gpus: int = 0  # how many GPUs the check needs (``@pytest.mark.gpu(count=2)``); 1 for a plain gpu mark
    timeout_s: float = 60.0
    where: str = ""

    def __post_init__(self) -> None:
        at = f"on check {self.id} in {self.where}"
        if isinstance(self.points, bool) or not isinstance(self.points, (int, float)) or self.points < 0:
            raise SpecError(f"points {self.points!r} {at}: give a number >= 0")
        if self.visibility not in VISIBILITIES:
            raise SpecError(f"visibility {self.visibility!r} {at}: use one of {', '.join(VISIBILITIES)}")
        for name in ("title", "hint"):
            value = getattr(self, name)
            if not isinstance(value, dict) or set(value) != set(LANGS) or not all(value.values()):
                raise SpecError(f"{name} {value!r} {at}: give {{'zh': ..., 'en': ...}}, both non-empty")
        if not isinstance(self.timeout_s, (int, float)) or self.timeout_s <= 0:
            raise SpecError(f"timeout {self.timeout_s!r} {at}: give seconds > 0")


def check_id(nodeid: str) -> str:
    """``graders/suites/a/test_merge.py::test_no_lora_left`` -> ``merge.no_lora_left``."""
    path, _, name = nodeid.partition("::")
    module = path.rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_")
    return f"{module}.{name.removeprefix('test_')}"
