"""The grading plugin: markers become scored checks; outcomes and messages follow the contract."""
from __future__ import annotations

import pytest

from graders.plugin import outcomes as O
from graders.plugin.plugin import GradingPlugin

pytest_plugins = ["pytester"]

SUITE = '''
import pytest
from graders.plugin import PartialCredit, say
T = {"zh": "標題", "en": "title"}
H = {"zh": "提示文字", "en": "hint text"}

@pytest.mark.check(points=2, title=T, hint=H)
def test_passes(submission):
    assert submission.call("double", 2) == 4

@pytest.mark.check(points=3, title=T, hint=H)
def test_fails_with_message(submission):
    got = submission.call("double", 3)
    assert got == 6, say(f"預期 6，實際 {got}", f"expected 6, got {got}")

@pytest.mark.check(points=3, title=T, hint=H, visibility="hidden")
def test_hidden_fails(submission):
    assert submission.call("double", 3) == 6, "SECRET assertion text"

@pytest.mark.check(points=3, title=T, hint=H, visibility="hidden")
def test_hidden_diagnosed(submission):
    from graders.plugin.outcomes import Diagnosed
    raise Diagnosed(say("診斷：用了 alpha", "diagnosis: alpha used"))

@pytest.mark.check(points=4, title=T, hint=H)
def test_partial(submission):
    raise PartialCredit(0.25, "one of four parts")

@pytest.mark.check(points=1, title=T, hint=H)
def test_bare_assert(submission):
    assert submission.call("double", 1) == 3

@pytest.mark.check(points=5, title=T, hint=H)
@pytest.mark.gpu
def test_needs_gpu(submission):
    assert True

@pytest.mark.check(points=2, title=T, hint=H)
@pytest.mark.gpu(count=2)
def test_needs_two_gpus(submission):
    assert True

@pytest.mark.check(points=1, title=T, hint=H)
def test_student_raises(submission):
    submission.call("boom")

@pytest.mark.check(points=1, title=T, hint=H)
def test_kernel_gone(submission):
    submission.call("dead")
'''


class FakeSubmission:
    timeout_s = 1.0

    def call(self, name, *args):
        from graders.channel import ChannelError, StudentError

        if name == "double":
            return args[0] * 2 if args[0] != 3 else 7
        if name == "boom":
            raise StudentError("ValueError", "bad shape")
        raise ChannelError("kernel died")


def run_suite(pytester, **kw):
    pytester.makepyfile(test_suite=SUITE)
    plugin = GradingPlugin(submission=FakeSubmission(), reference=None, profile="tiny", assignment=None,
                           has_gpu=False, **kw)
    pytester.inline_run("-p", "no:cacheprovider", plugins=[plugin])
    return {r.id: r for r in plugin.results}, plugin


def test_outcomes_points_and_messages(pytester):
    results, plugin = run_suite(pytester)
    assert plugin.spec_errors == []
    assert results["suite.passes"].status == O.PASSED and results["suite.passes"].points == 2
    failed = results["suite.fails_with_message"]
    assert (failed.status, failed.points, failed.message) == (O.FAILED, 0, "預期 6，實際 7")
    hidden = results["suite.hidden_fails"]
    assert hidden.status == O.FAILED and "SECRET" not in hidden.message and hidden.message == "提示文字"
    assert results["suite.partial"].points == 1.0 and results["suite.partial"].message == "one of four parts"
    bare = results["suite.bare_assert"]
    assert bare.message.startswith(O.MSG_NO_ASSERT_TEXT["zh"]) and "提示文字" in bare.message
    gpu = results["suite.needs_gpu"]
    assert (gpu.status, gpu.points, gpu.max_points) == (O.PENDING, 0, 5)
    assert results["suite.student_raises"].status == O.FAILED
    raised = results["suite.student_raises"].message
    assert "ValueError" in raised and "bad shape" not in raised, "zh feedback names the error type, not library English"
    assert results["suite.kernel_gone"].status == O.ERROR


def test_a_check_needing_more_gpus_than_the_runner_has_is_pending(pytester):
    pytester.makepyfile(test_suite=SUITE)
    plugin = GradingPlugin(submission=FakeSubmission(), reference=None, profile="tiny", assignment=None,
                           has_gpu=True, gpu_count=1, lang="en")
    pytester.inline_run("-p", "no:cacheprovider", plugins=[plugin])
    results = {r.id: r for r in plugin.results}
    assert results["suite.needs_gpu"].status == O.PASSED  # one GPU: the one-GPU check runs
    two = results["suite.needs_two_gpus"]
    assert (two.status, two.points, two.max_points) == (O.PENDING, 0, 2)
    assert two.message == "Needs 2 GPUs: this runner has 1; left pending for a runner with enough."


def test_a_hidden_check_shows_its_diagnosis_not_its_static_hint(pytester):
    results, _ = run_suite(pytester)
    assert results["suite.hidden_diagnosed"].message == "診斷：用了 alpha"


def test_student_errors_keep_the_library_text_in_english_feedback(pytester):
    results, _ = run_suite(pytester, lang="en")
    run_suite(pytester)  # back to zh for the tests that follow
    assert "ValueError: bad shape" in results["suite.student_raises"].message


def test_visible_only_drops_hidden_checks(pytester):
    results, _ = run_suite(pytester, visible_only=True)
    assert "suite.hidden_fails" not in results and "suite.passes" in results


def test_misdeclared_check_names_file_and_check(pytester):
    pytester.makepyfile(test_bad='''
import pytest
@pytest.mark.check(points="x", title={"zh": "a", "en": "b"}, hint={"zh": "a", "en": "b"})
def test_one(submission):
    pass
''')
    plugin = GradingPlugin(submission=FakeSubmission(), reference=None, profile="tiny", assignment=None, has_gpu=False)
    pytester.inline_run("-p", "no:cacheprovider", plugins=[plugin])
    assert plugin.spec_errors == ["points 'x' on check bad.one in test_bad.py: give a number >= 0"]
    assert plugin.results == []
