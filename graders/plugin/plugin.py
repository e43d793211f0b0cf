"""The pytest plugin that turns a grader suite into scored checks.

Markers (registered below with their signature):
    @pytest.mark.check(points=2, title={"zh": ..., "en": ...}, hint={"zh": ..., "en": ...},
                       visibility="hidden", cell="test-standardize", timeout=60)
    @pytest.mark.gpu   # needs CUDA; reported as pending where there is none
    @pytest.mark.gpu(count=2)   # needs two GPUs; pending on a runner with fewer
Fixtures: ``submission`` and ``reference`` (handles on the executed student and reference
notebooks), ``profile`` (tiny|full), ``assignment`` (its settings), ``rng`` (a seeded generator).

Outcomes are decided only in the ``pytest_runtest_makereport`` wrapper; per-test state lives in
``item.stash``. Settings come from the ``GradingPlugin`` constructor (the engine), never from
the student.
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from graders.plugin import outcomes as O
from graders.plugin.i18n import pick, set_lang
from graders.plugin.spec import CheckSpec, SpecError, check_id

MARKERS = [
    "check(points, title, hint, visibility='visible', cell=None, timeout=60): a graded check. "
    "Example: @pytest.mark.check(points=2, title={'zh': '標準化', 'en': 'standardize'}, "
    "hint={'zh': '...', 'en': '...'}, visibility='hidden')",
    "gpu(count=1): the check needs count CUDA GPUs; with fewer it is reported as pending, never passed",
]

spec_key = pytest.StashKey[CheckSpec]()
started_key = pytest.StashKey[float]()


def _channel_errors() -> tuple[type, type]:
    from graders.channel import ChannelError, StudentError

    return ChannelError, StudentError


class GradingPlugin:
    def __init__(self, *, submission: Any, reference: Any, profile: str, assignment: Any,
                 visible_only: bool = False, has_gpu: bool | None = None, gpu_count: int | None = None,
                 seed: int = 0, lang: str = "zh"):
        self._submission = submission
        self._reference = reference
        self._profile = profile
        self._assignment = assignment
        self.visible_only = visible_only
        set_lang(lang)  # messages of this run, and the suite's say(), speak this language
        self.seed = seed  # fresh inputs per student, the same on a re-grade
        if has_gpu is None or (has_gpu and gpu_count is None):
            import torch

            has_gpu = torch.cuda.is_available() if has_gpu is None else has_gpu
            gpu_count = max(1, torch.cuda.device_count()) if has_gpu and gpu_count is None else gpu_count
        self.has_gpu = has_gpu
        self.gpu_count = (gpu_count or 1) if has_gpu else 0  # a check marked gpu(count=N) needs N
        self.results: list[O.CheckResult] = []
        self.collected: list[CheckSpec] = []  # every check that will run: the score's denominator
        self.spec_errors: list[str] = []

    # --- configuration -------------------------------------------------------------------
    def pytest_configure(self, config: pytest.Config) -> None:
        for line in MARKERS:
            config.addinivalue_line("markers", line)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return [f"grading: profile={self._profile} gpu={self.has_gpu} visible_only={self.visible_only}"]

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        kept = []
        for item in items:
            marker = item.get_closest_marker("check")
            if marker is None:
                self.spec_errors.append(f"{item.nodeid} has no @pytest.mark.check marker")
                continue
            kw = dict(marker.kwargs)
            try:
                spec = CheckSpec(id=check_id(item.nodeid), points=kw.pop("points", None),
                                 title=kw.pop("title", None), hint=kw.pop("hint", None),
                                 visibility=kw.pop("visibility", "visible"), cell=kw.pop("cell", None),
                                 timeout_s=kw.pop("timeout", 60.0), gpu=item.get_closest_marker("gpu") is not None,
                                 gpus=_gpus_needed(item),
                                 where=item.nodeid.partition("::")[0])
                if kw:
                    raise SpecError(f"unknown arguments {sorted(kw)} on check {check_id(item.nodeid)}")
            except SpecError as err:
                self.spec_errors.append(str(err))
                continue
            if self.visible_only and spec.visibility != "visible":
                continue
            item.stash[spec_key] = spec
            self.collected.append(spec)
            kept.append(item)
        items[:] = kept

    # --- fixtures ------------------------------------------------------------------------
    @pytest.fixture
    def submission(self, request: pytest.FixtureRequest) -> Any:
        self._apply_timeout(self._submission, request)
        return self._submission

    @pytest.fixture
    def reference(self, request: pytest.FixtureRequest) -> Any:
        if self._reference is None:
            pytest.fail("the reference notebook is not available in this run", pytrace=False)
        self._apply_timeout(self._reference, request)
        return self._reference

    @pytest.fixture
    def profile(self) -> str:
        return self._profile

    @pytest.fixture
    def assignment(self) -> Any:
        return self._assignment

    @pytest.fixture
    def grader_tmp(self):
        """A scratch folder of the grader's own for one check (safe copies of artifacts, adapters it
        makes), removed afterwards."""
        from pathlib import Path

        from graders.sandbox.scratch import scratch_dir

        with scratch_dir("grader") as tmp:
            yield Path(tmp)

    @pytest.fixture
    def rng(self, request: pytest.FixtureRequest):
        """A torch.Generator seeded per (submission, check): fresh inputs, stable re-grades."""
        import hashlib

        import torch

        digest = hashlib.sha256(f"{self.seed}:{request.node.nodeid}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))

    @staticmethod
    def _apply_timeout(handle: Any, request: pytest.FixtureRequest) -> None:
        spec = request.node.stash.get(spec_key, None)
        if spec is not None and hasattr(handle, "timeout_s"):
            handle.timeout_s = spec.timeout_s

    # --- outcomes ------------------------------------------------------------------------
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[started_key] = time.perf_counter()
        spec = item.stash[spec_key]
        if spec.gpu and spec.gpus > self.gpu_count:
            pytest.skip(self._pending_message(spec))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        spec = item.stash.get(spec_key, None)
        if spec is None:
            return report
        done = (call.when == "call") or (call.when == "setup" and report.outcome != "passed")
        if done:
            self.results.append(self._result(spec, call, report, time.perf_counter() - item.stash[started_key]))
        return report

    def _pending_message(self, spec: CheckSpec) -> str:
        if not self.has_gpu:
            return pick(O.MSG_PENDING_GPU)
        return pick(O.MSG_PENDING_GPUS).format(need=spec.gpus, have=self.gpu_count)

    def _result(self, spec: CheckSpec, call: pytest.CallInfo, report: pytest.TestReport,
                duration: float) -> O.CheckResult:
        def result(status: str, points: float, message: str, diagnosed: bool = False) -> O.CheckResult:
            if spec.visibility == "hidden" and status in (O.FAILED,) and not diagnosed:
                message = pick(spec.hint)  # never the assertion text of a hidden check
            return O.CheckResult(id=spec.id, title=pick(spec.title), points=round(points, 4),
                                 max_points=spec.points, status=status, visibility=spec.visibility,
                                 message=message, hint=pick(spec.hint), gpu=spec.gpu,
                                 duration_s=round(duration, 3), cell=spec.cell)

        if report.skipped and spec.gpu and spec.gpus > self.gpu_count:
            return result(O.PENDING, 0.0, self._pending_message(spec))
        if report.passed:
            return result(O.PASSED, spec.points, "")
        exc = call.excinfo.value if call.excinfo else None
        ChannelError, StudentError = _channel_errors()
        if isinstance(exc, O.PartialCredit):
            return result(O.FAILED, spec.points * exc.fraction, str(exc))
        if isinstance(exc, O.Diagnosed):
            return result(O.FAILED, 0.0, _assertion_text(exc) or pick(spec.hint), diagnosed=True)
        if isinstance(exc, StudentError):
            return result(O.FAILED, 0.0, pick(O.MSG_STUDENT_RAISED).format(error=_first_line(exc), kind=exc.ename))
        if isinstance(exc, ChannelError) and getattr(exc, "check_status", None) == O.FAILED:
            return result(O.FAILED, 0.0, _first_line(exc))
        if isinstance(exc, ChannelError):
            return result(O.ERROR, 0.0, pick(O.MSG_KERNEL_GONE) + f" ({_first_line(exc)})")
        if isinstance(exc, AssertionError):
            text = _assertion_text(exc)
            return result(O.FAILED, 0.0, text or pick(O.MSG_NO_ASSERT_TEXT) + " " + pick(spec.hint))
        if report.skipped:
            return result(O.ERROR, 0.0, pick(O.MSG_GRADER_ERROR).format(error="skipped"))
        if exc is not None and type(exc).__name__ == "Failed":  # pytest.fail(...) in a fixture or check
            return result(O.FAILED if call.when == "call" else O.ERROR, 0.0, _first_line(exc))
        name = type(exc).__name__ if exc else "unknown"
        return result(O.ERROR, 0.0, pick(O.MSG_GRADER_ERROR).format(error=f"{name}: {_first_line(exc)}"))


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def _assertion_text(exc: AssertionError) -> str:
    """The author's message only: pytest's rewritten 'assert x == y' detail follows a newline."""
    text = str(exc).strip()
    if not text or text.startswith("assert "):
        return ""
    return text.split("\nassert ")[0].strip()[:1000]


def _gpus_needed(item: pytest.Item) -> int:
    """GPUs a check needs: 0 without a gpu mark, else its ``count`` (1 by default)."""
    marker = item.get_closest_marker("gpu")
    return 0 if marker is None else int(marker.kwargs.get("count", 1))
