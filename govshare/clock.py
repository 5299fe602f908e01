"""China Standard Time (UTC+8, no daylight saving): the zone in which the platform's people read times, count
working days and write dates. Times are stored and compared in UTC (``govshare.platformdb.UTCDateTime``)."""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA = timezone(timedelta(hours=8))
