"""Foundations every layer may import: configuration, error codes, messages, the platform database.

Imports nothing else of this repository.
"""
