"""Foundations every layer may import: configuration, error codes, messages, the platform database's foundations
(the shared metadata, engines, the UTC column type, the change counter), China time, application keys.

May import nothing of ours.
"""
