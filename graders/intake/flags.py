"""Flags: what intake, execution and isolation noticed about a submission."""
from __future__ import annotations

from dataclasses import asdict, dataclass

# Kinds, as named in result.json. A flag never changes a score by itself; it explains one.
MALFORMED_NOTEBOOK = "malformed_notebook"
MISSING_NOTEBOOK = "missing_notebook"
EXTRA_NOTEBOOK = "extra_notebook"
TAMPERED_CELL = "tampered_cell"
MISSING_CELL = "missing_cell"
DUPLICATE_CELL = "duplicate_grade_id"
CHANGED_POINTS = "changed_points"
CHANGED_CELL_TYPE = "changed_cell_type"
TIMEOUT = "timeout"
KERNEL_DIED = "kernel_died"
MEMORY_LIMIT = "memory_limit"
PROCESS_LIMIT = "process_limit"
OUTPUT_TRUNCATED = "output_truncated"
ISOLATION_DEGRADED = "isolation_degraded"
LATE = "late"
REFERENCE_ARTIFACT = "reference_artifact"
SLOW_KERNEL_START = "slow_kernel_start"  # the first start gave no answer in time; a second one worked
WARM_KERNEL_FALLBACK = "warm_kernel_fallback"  # meant to fork from the zygote, started cold instead (slower only)


@dataclass(frozen=True)
class Flag:
    kind: str
    detail: str
    notebook: str = ""
    cell: str = ""

    def to_json(self) -> dict:
        return asdict(self)
