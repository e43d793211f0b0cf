"""The limits a sandboxed kernel runs under, checked where they are built."""
from __future__ import annotations

from dataclasses import dataclass, field

from graders.errors import CourseError

ISOLATIONS = ("auto", "bwrap", "none")


@dataclass(frozen=True)
class SandboxPolicy:
    isolation: str = "auto"  # auto: bwrap where it runs, else rlimits only (flagged)
    memory_mb: int = 6144  # address space; torch alone maps ~1.5 GiB of virtual memory
    max_processes: int = 128  # per kernel uid; a fork bomb stops here
    max_file_mb: int = 1024  # largest file the kernel may write (a merged tiny model is ~1 MiB)
    cpu_seconds: int = 3600  # CPU time of the kernel process, a backstop behind the wall clock
    cell_timeout_s: float = 120.0  # CPU seconds per kernel thread (see KernelSession.execute)
    notebook_timeout_s: float = 900.0  # the same, for all cells of a notebook together
    # Wall-clock guard against hangs (sleep, a lock): factor x the CPU limit + extra seconds. Generous
    # on purpose: on a loaded host honest code gets less than a core, and CPU time judges speed.
    wall_guard_factor: float = 3.0
    wall_guard_extra_s: float = 60.0
    output_cap_bytes: int = 1_000_000  # stdout/stderr kept per cell; the rest is counted, not stored
    hidden_paths: tuple[str, ...] = ()
    needed_paths: tuple[str, ...] = ()  # read-only paths the kernel imports from (the course checkout)
    env: dict = field(default_factory=dict)
    threads: int = 0  # OMP/MKL threads in the kernel; 0 = leave the default
    warm_kernels: bool = True  # fork kernels from a zygote that imported torch & co once (sandbox/zygote.py)
    gpu: bool = False  # the kernel gets the runner's GPU: no RLIMIT_AS, driver env, cold start (sandbox/gpu.py)

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise CourseError(f"isolation {self.isolation!r}: use one of {', '.join(ISOLATIONS)}")
        for name, low in (("memory_mb", 256), ("max_processes", 8), ("max_file_mb", 1), ("cpu_seconds", 1),
                          ("output_cap_bytes", 1024)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise CourseError(f"sandbox {name} {value!r}: give an integer >= {low}")
        for name in ("cell_timeout_s", "notebook_timeout_s", "wall_guard_factor"):
            if getattr(self, name) <= 0:
                raise CourseError(f"sandbox {name} {getattr(self, name)!r}: give seconds > 0")
        if self.wall_guard_extra_s < 0:
            raise CourseError(f"sandbox wall_guard_extra_s {self.wall_guard_extra_s!r}: give seconds >= 0")

    def wall_guard(self, cpu_limit_s: float) -> float:
        """Wall-clock seconds after which code with a ``cpu_limit_s`` limit counts as hung."""
        return self.wall_guard_factor * cpu_limit_s + self.wall_guard_extra_s
