"""Reach the departments' own databases: build and run the source query, mask values before they leave.

Knows nothing of GraphQL, Casbin or grants: it is told which columns, which rows and which masks. May import
``govshare``.
"""
