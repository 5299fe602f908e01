"""Foundations every layer may import: configuration, error codes, messages, the platform database.

May import nothing of ours.
"""
