"""Working days on the Chinese calendar: holidays and make-up working days (调休).

Sources, in order: a year's official schedule loaded by an administrator (``govshare calendar load``);
the maintained ``chinese-calendar`` package for the years it covers; otherwise weekdays only, and every
deadline computed that way is *provisional* (said in the API and logged) until the schedule is loaded.
"""

from __future__ import annotations

import datetime
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import chinese_calendar
from sqlalchemy import delete, select

from applications.tables import work_calendars
from govshare.clock import CHINA
from govshare.logs import logger

log = logger(__name__)  # govshare.<module>: one logging configuration covers it


class ScheduleError(ValueError):
    """A schedule file that cannot be used; the message says where."""


@dataclass(frozen=True)
class YearSchedule:
    """One year's official holiday schedule (国务院办公厅关于部分节假日安排的通知)."""

    year: int
    holidays: frozenset[datetime.date]  # days off that would otherwise be working days
    workdays: frozenset[datetime.date]  # make-up working days on weekends
    source: str = ""


@dataclass(frozen=True)
class Deadline:
    at: datetime.datetime  # the moment the answer is due (end of the last working day, China time)
    provisional: bool  # counted at least partly without an official schedule
    unscheduled_years: tuple[int, ...] = ()


def parse_schedule(text: str, origin: str = "schedule") -> YearSchedule:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{origin}: {exc}") from None
    unknown = set(document) - {"year", "holidays", "workdays", "source"}
    if unknown:
        raise ScheduleError(f"{origin}: unknown field(s) {', '.join(sorted(unknown))}")
    year = document.get("year")
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise ScheduleError(f"{origin}: year must be a year such as 2027")

    def days(name: str) -> frozenset[datetime.date]:
        values = document.get(name, [])
        if not isinstance(values, list):
            raise ScheduleError(f"{origin}: {name} must be a list of dates")
        parsed = set()
        for value in values:
            try:
                day = value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))
            except ValueError:
                raise ScheduleError(f"{origin}: {name}: {value!r} is not a date (YYYY-MM-DD)") from None
            if day.year != year:
                raise ScheduleError(f"{origin}: {name}: {day} is not in {year}")
            parsed.add(day)
        return frozenset(parsed)

    holidays, workdays = days("holidays"), days("workdays")
    if not holidays:
        raise ScheduleError(f"{origin}: holidays is empty; a year's schedule names its public holidays")
    if holidays & workdays:
        raise ScheduleError(
            f"{origin}: both a holiday and a working day: {', '.join(map(str, sorted(holidays & workdays)))}"
        )
    weekday_workdays = [d for d in workdays if d.isoweekday() <= 5]
    if weekday_workdays:
        raise ScheduleError(f"{origin}: workdays are make-up days on weekends, but {weekday_workdays[0]} is a weekday")
    return YearSchedule(year, holidays, workdays, str(document.get("source", "")))


def load_schedule_file(path: Path) -> YearSchedule:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(f"{path}: {exc.strerror}") from None
    return parse_schedule(text, str(path))


@dataclass
class WorkCalendar:
    schedules: dict[int, YearSchedule] = field(default_factory=dict)

    def is_workday(self, day: datetime.date) -> tuple[bool, bool]:
        """(is a working day, known from an official schedule)."""
        schedule = self.schedules.get(day.year)
        if schedule is not None:
            if day in schedule.workdays:
                return True, True
            return day.isoweekday() <= 5 and day not in schedule.holidays, True
        try:
            return chinese_calendar.is_workday(day), True
        except NotImplementedError:  # a year the package does not know yet
            return day.isoweekday() <= 5, False

    def deadline(self, submitted_at: datetime.datetime, working_days: int) -> Deadline:
        """The end of the ``working_days``-th working day after the day of submission (China time)."""
        day = submitted_at.astimezone(CHINA).date()
        counted, unscheduled = 0, set()
        while counted < working_days:
            day += datetime.timedelta(days=1)
            workday, known = self.is_workday(day)
            if not known:
                unscheduled.add(day.year)
            counted += workday
        at = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), CHINA)
        if unscheduled:
            log.warning(
                "deadline %s counted on weekdays only: no holiday schedule for %s (load it with "
                "'govshare calendar load'); it is provisional",
                at.isoformat(),
                ", ".join(map(str, sorted(unscheduled))),
            )
        return Deadline(at, bool(unscheduled), tuple(sorted(unscheduled)))


async def store_schedule(conn, schedule: YearSchedule, *, loaded_by: str) -> None:
    """Record ``schedule`` as its year's, replacing an earlier one for the same year."""
    await conn.execute(delete(work_calendars).where(work_calendars.c.year == schedule.year))
    await conn.execute(
        work_calendars.insert().values(
            year=schedule.year,
            holidays=sorted(d.isoformat() for d in schedule.holidays),
            workdays=sorted(d.isoformat() for d in schedule.workdays),
            source=schedule.source,
            loaded_by=loaded_by,
            loaded_at=datetime.datetime.now(datetime.UTC),
        )
    )


async def load_calendar(conn) -> WorkCalendar:
    rows = (await conn.execute(select(work_calendars))).all()
    return WorkCalendar(
        {
            r.year: YearSchedule(
                r.year,
                frozenset(map(datetime.date.fromisoformat, r.holidays)),
                frozenset(map(datetime.date.fromisoformat, r.workdays)),
                r.source,
            )
            for r in rows
        }
    )
