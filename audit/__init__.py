"""Every access recorded: the durable, append-only access records, the hash chains over them and their signed
checkpoints, and the OpenTelemetry spans that mirror them.

May import ``govshare``. Spans are for operations; the records are the audit.
"""
