"""Next runs as pure functions of the schedule and a fixed ``now``: DST days, weekdays, until, max_runs."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from voiceagent.schedules import timing
from voiceagent.schedules.models import ScheduleSpec

CALL = {"to": "+15550100"}


def spec(when, tz=None, **kw):
    return ScheduleSpec.model_validate({"name": "t", "when": when, "timezone": tz, "call": CALL, **kw})


def at(local, tz):
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp()


def walls(s, start_local, count, runs_done=0):
    after = at(start_local, s.timezone)
    ts = timing.upcoming(s, anchor=after, after=after, runs_done=runs_done, count=count)
    return [timing.wall(t, s.zone) for t in ts], ts


@pytest.mark.parametrize("tz,day", [("Europe/Berlin", "2026-03-29"), ("America/New_York", "2026-03-08")])
def test_spring_forward_a_time_in_the_gap_runs_once_shifted_by_the_gap(tz, day):
    s = spec({"every": "daily", "time": "02:30"}, tz)
    before = datetime.fromisoformat(day).toordinal() - 1
    start = datetime.fromordinal(before).date().isoformat() + "T12:00"
    got, ts = walls(s, start, 3)
    nxt = datetime.fromordinal(before + 2).date().isoformat()
    assert got[0] == (day, "03:30")  # 02:30 does not exist that day: 03:30 local, not skipped
    assert got[1] == (nxt, "02:30")
    assert ts[1] - ts[0] == 23 * 3600  # one run on the day, the next one a day later in wall time
    assert len({d for d, _ in got}) == 3


@pytest.mark.parametrize("tz,day,time,first_offset", [("Europe/Berlin", "2026-10-25", "02:30", "+02:00"),
                                                      ("America/New_York", "2026-11-01", "01:30", "-04:00")])
def test_fall_back_a_repeated_time_runs_once_at_its_first_occurrence(tz, day, time, first_offset):
    s = spec({"every": "daily", "time": time}, tz)
    prev = datetime.fromordinal(datetime.fromisoformat(day).toordinal() - 1).date().isoformat()
    got, ts = walls(s, prev + "T12:00", 3)
    assert [d for d, _ in got].count(day) == 1
    assert got[0] == (day, time)
    assert timing.iso(ts[0], s.zone).endswith(first_offset)  # the first occurrence (summer time)
    # asked from inside the repeated hour (after the first occurrence ran), it does not run again
    mid = ts[0] + 3600 + 600  # the second occurrence of the hour, 10 minutes in
    again = timing.next_due(s, anchor=0, after=mid)
    assert timing.wall(again, s.zone)[0] != day


def test_an_hourly_cron_across_fall_back_never_repeats_an_instant_or_a_wall_time():
    s = spec({"cron": "30 * * * *"}, "Europe/Berlin")
    got, ts = walls(s, "2026-10-25T00:00", 6)
    assert ts == sorted(set(ts))
    assert [w for _, w in got] == ["00:30", "01:30", "02:30", "03:30", "04:30", "05:30"]


def test_weekdays_skip_saturday_and_sunday_and_weekends_are_only_those():
    s = spec({"every": "weekdays", "time": "07:00"}, "Europe/Berlin")
    got, _ = walls(s, "2026-05-01T08:00", 5)  # a Friday, after 7:00
    assert got == [("2026-05-04", "07:00"), ("2026-05-05", "07:00"), ("2026-05-06", "07:00"),
                   ("2026-05-07", "07:00"), ("2026-05-08", "07:00")]
    w = spec({"every": "weekends", "time": "09:15"}, "Europe/Berlin")
    got, _ = walls(w, "2026-05-01T08:00", 3)
    assert got == [("2026-05-02", "09:15"), ("2026-05-03", "09:15"), ("2026-05-09", "09:15")]


def test_until_and_max_runs_end_the_series():
    s = spec({"every": "daily", "time": "07:00"}, "America/New_York", until="2026-05-03")
    got, _ = walls(s, "2026-05-01T06:00", 10)
    assert got == [("2026-05-01", "07:00"), ("2026-05-02", "07:00"), ("2026-05-03", "07:00")]
    m = spec({"cron": "0 7 * * *"}, "America/New_York", max_runs=2)
    assert len(walls(m, "2026-05-01T06:00", 10)[0]) == 2
    assert walls(m, "2026-05-01T06:00", 10, runs_done=2)[0] == []


def test_one_time_runs_once_and_a_time_in_the_past_names_its_field():
    now = 1_800_000_000.0
    s = spec({"in_seconds": 90})
    assert timing.first_due(s, anchor=now, now=now) == now + 90
    assert timing.next_due(s, anchor=now, after=now + 90, runs_done=0) is None
    assert timing.next_due(s, anchor=now, after=now, runs_done=1) is None
    past = spec({"at": "2020-01-01T10:00:00+01:00"})
    with pytest.raises(timing.TimingError) as exc:
        timing.first_due(past, anchor=now, now=now)
    assert exc.value.field == "when.at"
    gone = spec({"every": "daily", "time": "07:00"}, "UTC", until="2020-01-01")
    with pytest.raises(timing.TimingError) as exc:
        timing.first_due(gone, anchor=now, now=now)
    assert exc.value.field == "until"


def test_runs_missed_beyond_the_grace_are_listed_and_the_series_resumes_after_them():
    s = spec({"cron": "*/10 * * * *"}, "UTC")
    base = at("2026-05-01T00:00", "UTC")
    now = base + 3600 + 30  # down for an hour
    nxt, missed = timing.skip_missed(s, anchor=base, after=base, runs_done=0, now=now, grace=60)
    assert nxt == base + 3600  # 30 s late: within the grace, it fires
    assert missed == [base + 600 * i for i in range(1, 6)]
