"""Who may read which data item, for what purpose, until when: the Casbin model, grants, restrictions, decisions.

Owns the grants' and policy versions' tables (``tables.py``). Imports ``govshare`` and ``catalog`` (and the mask
names of ``connectors.masking``, the hash chain of ``audit.chain``); never GraphQL.
"""
