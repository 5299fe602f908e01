"""The data path of every GraphQL field that reads a resource: decide, fetch, mask, record.

May import ``policies``, ``connectors``, ``audit``, ``catalog``, ``applications``, ``corrections``, ``oversight`` and ``govshare``; never ``schema``.
"""
