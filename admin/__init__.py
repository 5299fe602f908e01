"""Policy administration for security staff: accounts and sessions (their tables in ``tables.py``), the web console
and the admin GraphQL API.

May import govshare, catalog and policies; nothing outside it imports it but server.py and cli.py.
"""
