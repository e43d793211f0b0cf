from datetime import datetime, timezone

import pytest

from graders.errors import CourseError
from graders.records.late import late_penalty, policy_from_settings, read_timestamp
from tests.records.classroom import POLICY


def stamp(tmp_path, text):
    (tmp_path / "timestamp.txt").write_text(text)
    return tmp_path


@pytest.mark.parametrize("when, days, fraction", [
    ("2026-12-01 15:58:00.000000 UTC", 0, 0.0),   # 23:58 in +08:00: on time
    ("2026-12-01 16:00:00.000000 UTC", 1, 0.1),   # one minute late starts a day
    ("2026-12-03 15:59:00.000000 UTC", 2, 0.2),
    ("2026-12-06 15:59:00.000000 UTC", 5, 0.5),
    ("2026-12-06 16:00:00.000000 UTC", 6, 1.0),   # past max_days: nothing left
])
def test_penalty_per_started_day_and_zero_after_max_days(tmp_path, when, days, fraction):
    late = late_penalty({"late": POLICY}, stamp(tmp_path, when))
    assert (late["days_late"], late["penalty_fraction"]) == (days, fraction)


def test_no_policy_or_no_timestamp_is_not_late(tmp_path):
    assert late_penalty({}, stamp(tmp_path, "2030-01-01 00:00:00 UTC")) is None
    assert late_penalty({"late": POLICY}, tmp_path / "elsewhere") is None


def test_timestamp_formats_of_nbgrader(tmp_path):
    assert read_timestamp(stamp(tmp_path, "2026-12-02 10:00:00.000000 UTC\n")) == \
        datetime(2026, 12, 2, 10, tzinfo=timezone.utc)
    assert read_timestamp(stamp(tmp_path, "2026-12-02 10:00:00")) == datetime(2026, 12, 2, 10, tzinfo=timezone.utc)
    with pytest.raises(CourseError, match="not a timestamp"):
        read_timestamp(stamp(tmp_path, "yesterday"))


@pytest.mark.parametrize("table, message", [
    ({"due": "2026-12-01T23:59:00"}, "no UTC offset"),
    ({"due": "soon"}, "not an ISO 8601"),
    ({"due": "2026-12-01T23:59:00+08:00", "penalty_per_day": 2}, "penalty_per_day"),
    ({"penalty_per_day": 0.1}, "needs 'due'"),
])
def test_bad_policy_says_what_to_write(table, message):
    with pytest.raises(CourseError, match=message):
        policy_from_settings({"late": table})
