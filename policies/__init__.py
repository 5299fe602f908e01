"""Who may read which data item, for what purpose, until when: the Casbin model, grants, restrictions, decisions.

Owns the grants' and policy versions' tables (``tables.py``). May import ``catalog``, ``govshare``, the mask names of
``connectors.masking`` and the hash chain of ``audit.chain``; never GraphQL.
"""
