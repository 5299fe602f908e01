"""Deadlines in working days on the Chinese calendar, across Spring Festival, National Day and into 2027."""

from __future__ import annotations

import datetime

import pytest

from applications.workdays import CHINA, ScheduleError, WorkCalendar, parse_schedule


def at(y, m, d, h=10):
    return datetime.datetime(y, m, d, h, tzinfo=CHINA)


def due(y, m, d):
    """The end of that day, China time."""
    return datetime.datetime(y, m, d, tzinfo=CHINA) + datetime.timedelta(days=1)


# 2027's schedule as an administrator would load it (illustrative: published each autumn by the State Council).
SCHEDULE_2027 = """
year = 2027
source = "国务院办公厅关于2027年部分节假日安排的通知"
holidays = ["2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11"]
workdays = ["2027-02-13"]
"""


def test_spring_festival_2026():
    # Thu 12 Feb: 13 (Fri) 1, 14 (Sat, make-up) 2, 15-23 off, 24-27 3-6, 28 (Sat, make-up) 7, Mar 2-4 8-10.
    deadline = WorkCalendar().deadline(at(2026, 2, 12), 10)
    assert deadline.at == due(2026, 3, 4) and not deadline.provisional


def test_national_day_2026():
    # Wed 30 Sep: Oct 1-7 off, 8 (Thu) 1, 9 2, 10 (Sat, make-up) 3, 12-16 4-8, 19-20 9-10.
    assert WorkCalendar().deadline(at(2026, 9, 30), 10).at == due(2026, 10, 20)


def test_submitted_on_a_holiday_counts_from_the_next_working_day():
    assert WorkCalendar().deadline(at(2026, 10, 3), 1).at == due(2026, 10, 8)


def test_into_2027_without_a_schedule_is_provisional(caplog):
    # Mon 21 Dec 2026: 22-25 1-4, 28-31 5-8, 2027: Jan 1 is a Friday, counted as a weekday without a schedule.
    deadline = WorkCalendar().deadline(at(2026, 12, 21), 10)
    assert deadline.at == due(2027, 1, 4) and deadline.provisional and deadline.unscheduled_years == (2027,)
    assert "provisional" in caplog.text and "2027" in caplog.text


def test_into_2027_with_a_loaded_schedule():
    schedule = parse_schedule(SCHEDULE_2027)
    deadline = WorkCalendar({2027: schedule}).deadline(at(2026, 12, 21), 10)
    assert deadline.at == due(2027, 1, 5) and not deadline.provisional  # Jan 1 is a holiday
    # Spring Festival 2027 as loaded: Thu 4 Feb → 5 off, 8-11 off, 12 1, 13 (Sat, make-up) 2, 15-19 3-7, 22-24 8-10.
    assert WorkCalendar({2027: schedule}).deadline(at(2027, 2, 4), 10).at == due(2027, 2, 24)


def test_a_loaded_schedule_overrides_the_package():
    override = parse_schedule('year = 2026\nholidays = ["2026-03-02"]\n')
    assert WorkCalendar({2026: override}).is_workday(datetime.date(2026, 3, 2)) == (False, True)


@pytest.mark.parametrize(
    "text, says",
    [
        ('year = 2027\nholidays = ["2026-12-31"]\n', "not in 2027"),
        ('year = 2027\nholidays = ["2027-13-01"]\n', "not a date"),
        ('year = 2027\nholidays = ["2027-02-13"]\nworkdays = ["2027-02-13"]\n', "both a holiday and a working day"),
        ('year = 2027\nholidays = ["2027-01-01"]\nworkdays = ["2027-02-12"]\n', "is a weekday"),
        ("year = 2027\nholidays = []\n", "holidays is empty"),
        ('year = 2027\nholiday = ["2027-01-01"]\n', "unknown field"),
        ('year = "2027"\n', "year must be"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(text, says):
    with pytest.raises(ScheduleError, match=says):
        parse_schedule(text)


def test_a_schedule_loaded_with_the_cli_makes_2027_deadlines_final(tmp_path, monkeypatch):
    import asyncio

    from click.testing import CliRunner

    from applications.workdays import load_calendar
    from cli import main
    from govshare.platformdb import make_engine

    monkeypatch.setenv("GOVSHARE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "2027.toml").write_text(SCHEDULE_2027, encoding="utf-8")
    result = CliRunner().invoke(main, ["calendar", "load", str(tmp_path / "2027.toml")])
    assert result.exit_code == 0, result.output
    assert "2027 年节假日安排已加载" in result.output
    bad = CliRunner().invoke(main, ["calendar", "load", str(tmp_path / "missing.toml")])
    assert bad.exit_code == 1 and "missing.toml" in bad.output

    async def stored():
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'platform.db'}")
        try:
            async with engine.connect() as conn:
                return await load_calendar(conn)
        finally:
            await engine.dispose()

    work_calendar = asyncio.run(stored())
    deadline = work_calendar.deadline(at(2026, 12, 21), 10)
    assert deadline.at == due(2027, 1, 5) and not deadline.provisional
