"""The data path of every GraphQL field that reads a resource: decide, fetch, mask, record.

Imports ``policies`` and ``connectors`` (and ``catalog``, ``audit``, ``govshare``); never ``schema``.
"""
