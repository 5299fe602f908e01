"""What one request carries through execution: who asks, why, and what it has accessed so far."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.records import AccessRecord, RequestRecords
from catalog.freshness import Recorded
from catalog.model import Catalog
from catalog.search import FormIndex
from connectors.registry import Connectors
from corrections.process import Disputes
from govshare.config import Settings
from govshare.keys import Caller
from govshare.logs import in_request
from govshare.subjects import SubjectKey
from policies.engine import PolicyEngine


@dataclass
class RequestContext:
    caller: Caller
    purpose: str | None
    operator: str | None
    lang: str
    request_id: str
    trace_id: str
    now: datetime
    catalog: Catalog
    policy: PolicyEngine
    connectors: Connectors
    settings: Settings
    tracer: Tracer
    # The platform database, for the share-application process; ``changed``: the request changed an application or
    # grant, which the endpoint brings into force (Runtime.changed) before the answer is sent.
    platform: AsyncEngine | None = None
    # The platform's secret behind the keyed-hash mask (each consumer department's key is derived from it).
    pseudonym_secret: bytes = b""
    # The key of the data-subject index (govshare.subjects): a subject lookup hashes the number asked with it.
    subject_key: SubjectKey | None = None
    # The form search's index of the same catalog (catalog/search.py), built with the snapshot.
    forms: FormIndex | None = None
    changed: bool = False
    # What was last recorded of each source's last change (catalog/freshness.py), by resource: the answer's
    # extensions.freshness is computed from it (resolvers/freshness.py), never from a source.
    freshness: Mapping[str, Recorded] = field(default_factory=dict)
    cost: int = 0  # rows x items answered so far (govshare.config max_cost)
    records: list[AccessRecord] = field(default_factory=list)
    # The records on their way to the writer (the endpoint's, None where nothing is recorded: the bench's switch).
    audit: RequestRecords | None = None
    # One GraphQL error per denied data item, added to the response beside the executor's errors.
    item_errors: list[dict] = field(default_factory=list)
    # Errors reported once per path (a link refused for every parent row is one error, not one per row).
    reported: set[tuple] = field(default_factory=set)
    # Link loaders of this request, by link path and selection (resolvers.links).
    loaders: dict[tuple, object] = field(default_factory=dict)
    # The open data-error reports of the snapshot in force (corrections.process.open_disputes).
    disputes: Disputes = field(default_factory=dict)
    # Top-level keys of the response's ``extensions`` (``disputes``: the open reports on items answered).
    extensions: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        in_request(self.request_id, self.trace_id)  # every line logged while it is handled names the request

    def records_final(self) -> None:
        """Say that the request's last access has ended and no record in ``records`` will change any more: they are
        handed to the writer now, their commit overlapping what the request still does before its answer (which waits
        for it all the same, server.py). A record appended after all is handed over at the end, as without this."""
        if self.audit is not None:
            self.audit.hand_over()
