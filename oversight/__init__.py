"""Oversight: what the platform shows about how sharing is used (Art 23-25, 27). Server-rendered charts
(``charts.py``), the providers' usage figures counted from the access records (``usage.py``) and tables as CSV or
xlsx (``exports.py``); the consumers' feedback and the coordinator's evaluation of departments build on them.

May import ``audit``, ``catalog``, ``policies``, ``applications``, ``corrections``, ``govshare``.
"""
