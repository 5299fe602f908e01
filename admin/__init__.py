"""Policy administration for security staff: accounts and sessions (their tables in ``tables.py``), the web console
and the admin GraphQL API.

May import ``policies``, ``catalog``, ``corrections``, ``oversight``, ``govshare``. Imported by ``server.py``, ``cli.py`` and the demo's set-up
(its staff accounts).
"""
