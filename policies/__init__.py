"""Who may read which data item, for what purpose, until when: the Casbin model, grants, restrictions, decisions.

Owns the grants', policy versions' and trusted documents' tables (``tables.py``); the trusted documents
each application registered are ``trusted.py``. May import ``catalog``, ``govshare``, the mask names of
``connectors.masking`` and the hash chain of ``audit.chain``; never GraphQL.
"""
