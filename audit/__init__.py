"""Every access recorded: the durable, append-only access records, and the OpenTelemetry spans that mirror them.

Imports only ``govshare``. Spans are for operations; the records are the audit.
"""
