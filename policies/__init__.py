"""Who may read which data item, for what purpose, until when: the Casbin model, grants, restrictions, decisions.

Imports ``govshare`` and ``catalog`` (and the mask names of ``connectors.masking``); never GraphQL.
"""
