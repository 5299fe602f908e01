"""Data corrections (校核纠错): a consumer reports a value it believes wrong, the provider's reviewers answer
``corrected`` or ``rejected`` within a deadline in working days (the applications' calendar), an unanswered report
goes to the coordinator once overdue, and answers carrying a disputed value say so. The reports' table
(``tables.py``), the process (``process.py``) and the sealing of the key values reports hold (``sealing.py``).

Whether a caller may report on a record is decided on the data path (``resolvers/corrections.py``: a lookup of
that record's item under the declared purpose, recorded); this package stores and answers what was let through.
May import ``catalog``, ``govshare``, the working-day calendar of ``applications.workdays`` and the process records
of ``applications.process``, ``audit.tables``.
"""
