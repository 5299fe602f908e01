"""The one configuration object.

Values come, in increasing precedence, from the defaults below, a TOML file
(``govshare.toml`` in the working directory, or the file named by ``GOVSHARE_CONFIG``)
and ``GOVSHARE_*`` environment variables (``GOVSHARE_DATABASE_URL``, ``GOVSHARE_MAX_PAGE_SIZE``...).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from govshare.errors import ConfigError
from govshare.ratelimit import UNAVAILABLE_MODES

TRACE_EXPORTERS = ("none", "console", "otlp")
LANGUAGES = ("zh-CN", "en")
NOT_CONFIGURABLE = frozenset({"enforce"})  # set in code by the bench only, never from a file or the environment
LOG_FORMATS = ("text", "json")
METRICS_TOKEN_MIN = 32  # characters of metrics_token: a secret a scraper holds, not a word to guess
# An origin as a browser sends it: scheme, host, optional port; no path, no wildcard.
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
# GOVSHARE_* variables that are not settings but are read elsewhere: any other GOVSHARE_* name that is not a
# setting is refused (SETTING_VARIABLE_UNKNOWN), as an unknown key in the TOML file is. tests/test_config.py
# checks that every GOVSHARE_* name the repository mentions is a setting or listed here.
# The shortest retention of access and process records (days): the Cybersecurity Law's six months of logs.
RETENTION_MIN_DAYS = 180

OTHER_VARIABLES = frozenset(
    {
        "GOVSHARE_CONFIG",  # the TOML file to read (above)
        "GOVSHARE_STAFF_PASSWORD",  # `govshare staff add`'s password (cli.py)
        # Tests and CI (tests/, .ci/run):
        "GOVSHARE_REQUIRE_SERVICES",  # a test needing a service fails instead of skipping
        "GOVSHARE_TEST_DB_PREFIX",  # the tests' PostgreSQL/MariaDB database names, per checkout
        "GOVSHARE_TEST_REDIS_DB",  # the tests' Redis database, per checkout
        "GOVSHARE_CHROMIUM",  # the browser test's Chromium
        "GOVSHARE_UPDATE_SNAPSHOTS",  # regenerate the schema snapshot
        "GOVSHARE_PROPERTY_EXAMPLES",  # hypothesis examples of the policy properties
        "GOVSHARE_HTTP_PROPERTY_EXAMPLES",  # ... and of the properties over HTTP
        "GOVSHARE_PLAN_PROPERTY_EXAMPLES",  # ... and of the compiled plans against the generic path
        "GOVSHARE_AUDIT_KEY",  # the graphql-http audit's key and purpose (interop/graphql-http/audit.mjs)
        "GOVSHARE_AUDIT_PURPOSE",
    }
)


@dataclass(frozen=True)
class Settings:
    var_dir: Path = Path("var")
    # ``{var}`` is replaced by var_dir, here and in catalog source URLs.
    database_url: str = "sqlite+aiosqlite:///{var}/platform.db"
    catalog_dir: Path = Path("catalog/demo")
    host: str = "127.0.0.1"
    port: int = 8000
    # Processes `govshare serve` runs on one port (`--workers`), all on the one platform database, each with its own
    # source pools, caches and memory:// counters; uvicorn's supervisor replaces one that dies. 1: one process.
    workers: int = 1
    trace_exporter: str = "none"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    language: str = "zh-CN"
    # Production: no introspection and no "Did you mean" suggestions (GraphiQL's explorer is then empty).
    production: bool = False
    # Every application key may send only the documents registered for its application (policies/trusted.py),
    # whatever its own flag (`govshare key documents only`). Off: only the keys so flagged are restricted.
    trusted_documents_required: bool = False
    # Art 22 ("谁经手，谁管理，谁使用，谁负责"): every /graphql request names its acting officer in X-Operator, or it
    # is refused (400 OPERATOR_REQUIRED) before anything is read. Unset (the default): on in production, off in
    # development (``requires_operator``).
    operator_required: bool | None = None
    default_page_size: int = 20
    max_page_size: int = 100
    # Rows one link hop may return for all its parent rows together.
    max_link_rows: int = 2000
    # Values one `in` filter may list: a long list is a guessing machine, and every value is a bound parameter
    # (drivers refuse more than about 32,000 in one statement).
    max_in_values: int = 500
    # Representations one `_entities` field (Apollo Federation) may carry: each is a lookup, all of one type are
    # one `in` filter on its key (so never more than max_in_values of one type either).
    max_representations: int = 500
    max_query_depth: int = 8
    max_aliases: int = 30
    max_root_fields: int = 10
    # Rows x items one operation may answer, across all its resources and link hops.
    max_cost: int = 50000
    max_tokens: int = 2000
    # Fields one operation holds once every fragment spread is expanded (fragments spread twice double).
    max_expanded_fields: int = 2000
    max_body_bytes: int = 65536
    # The URL's query string of a GET /graphql (the query, variables and operationName of GraphQL over HTTP's GET
    # form); a longer one is refused (414 URI_TOO_LONG): send it with POST. uvicorn refuses a request line of over
    # some 16 KiB on its own, without a code.
    max_query_string_bytes: int = 8192
    # Origins of browser applications allowed to call /graphql from their pages (CORS), comma-separated, each
    # scheme://host[:port] ("https://apps.linyi.gov.cn,https://hr.linyi.gov.cn"). Empty: no CORS at all (no CORS
    # header on any answer, no preflight answered). Never "*", never with credentials: the key is in Authorization.
    cors_origins: str = ""
    # How long a browser may keep a preflight's answer.
    cors_max_age_seconds: int = 600
    # The admin GraphQL API's bodies: a whole policy document may be imported in one.
    max_admin_body_bytes: int = 1048576
    source_timeout_seconds: float = 5.0
    # Connections this process keeps open to each department database, and at most: a read beyond them waits for one
    # (within source_timeout_seconds; a wait that outlasts it fails as the source's timeout does).
    source_pool_size: int = 20
    # A source failing this many times in a row is skipped for breaker_reset_seconds, then tried again.
    breaker_failures: int = 3
    breaker_reset_seconds: float = 10.0
    # Source results: memory:// (per process) or redis://host:port/db (shared). A resource is cached only
    # if its catalog entry allows it (cache_seconds), and never longer than cache_max_seconds.
    cache_url: str = "memory://"
    cache_max_seconds: int = 300
    # Freshness (catalog/freshness.py): how often a server reads every source's last change and records it (0: never;
    # `govshare catalog overdue --check` reads them by hand), and how long a realtime source may go without a change
    # before it is overdue.
    freshness_check_seconds: float = 300.0
    freshness_realtime_minutes: int = 60
    # The coordinator's evaluation of departments (oversight/evaluation.py): a TOML file whose [weights] table sets
    # how much each figure weighs (the others keep their defaults); "" for the defaults.
    evaluation_weights_file: str = ""
    # The platform's own credentials at upstream platforms (Art 9): a TOML file of tables named by the
    # source URL (govshare+https://…/graphql), each with key, purpose and operator.
    upstream_credentials: str = "{var}/upstreams.toml"
    # Servers `govshare demo --engine postgres|mariadb` builds the department databases on.
    demo_postgres_url: str = "postgresql://postgres@127.0.0.1:5432/"
    demo_mariadb_url: str = "mysql://root@127.0.0.1:3306/"
    # Requests per application key ("600/minute"; "" turns limiting off), counted in memory:// per
    # process or in redis://host:port/db shared by all processes.
    rate_limit: str = "600/minute"
    rate_limit_url: str = "memory://"
    # Rows x items (the cost max_cost bounds per operation) each application key may be answered per window
    # ("" turns it off), counted where the request count is (rate_limit_url).
    cost_budget: str = "200000/minute"
    # Where rate_limit_url is Redis and Redis cannot be reached: "closed" refuses (503 RATE_LIMIT_UNAVAILABLE) what
    # the request count, the cost budget or the staff sign-in limits would have admitted; "open" admits it uncounted.
    rate_limit_unavailable: str = "closed"
    # Share applications (Art 19): the provider answers within this many working days; silence approves.
    answer_working_days: int = 10
    silence_approves: bool = True
    max_grant_days: int = 1096
    # Data corrections (校核纠错): the provider answers a data-error report within this many working days (the
    # applications' calendar); an unanswered one goes to the coordinator once overdue (corrections/).
    data_error_answer_workdays: int = 5
    # ...and keeps at most this many reports open at a time (each is a dispute in every consumer's answers).
    data_error_open_limit: int = 100
    # A department keeps at most this many catalog submissions open (drafts and under review) at a time.
    catalog_open_submission_limit: int = 20
    # Where the heads of the audit hash chains are appended (audit/chain.py), and how often. In production
    # this file belongs on storage the database administrator cannot rewrite (a WORM or remote mount).
    audit_checkpoint_file: str = "{var}/audit-checkpoints.jsonl"
    audit_checkpoint_seconds: float = 60.0
    # ...or as soon as this process has written this many access records, whichever comes first (0: by time only).
    audit_checkpoint_records: int = 1000
    # The Ed25519 private key that signs each checkpoint (PEM, `govshare audit keygen` writes one), kept outside
    # the platform database. Development generates one under var/ when it is missing; production refuses a key
    # or a checkpoint file under var_dir, and a missing key.
    audit_signing_key_file: str = "{var}/audit-signing.key"
    # The public keys `govshare audit verify` checks signatures with ("ed25519:…", comma-separated during a key
    # rotation). Only these: never a key found beside the checkpoints. Production's verify requires it.
    audit_verify_public_key: str = ""
    # Access and process records older than this many days may be archived (`govshare audit archive`): moved to
    # signed archive files and removed from the live tables. The Cybersecurity Law (Art 21) asks for at least six
    # months of logs: less than RETENTION_MIN_DAYS is refused (AUDIT_RETENTION_TOO_SHORT).
    audit_retention_days: int = 180
    # Where `govshare audit archive` writes the archives and where reports, subject lookups and
    # `audit verify --archives` read them. In production it belongs on storage the database administrator cannot
    # rewrite, as the checkpoint file does.
    audit_archive_dir: str = "{var}/audit-archives"
    # The secret behind the keyed-hash mask (`hash`): each consumer department's pseudonyms are keyed by a key
    # derived from it. Created (32 random bytes) where missing; every process of one platform must share it, and
    # changing it changes every pseudonym.
    pseudonym_secret_file: str = "{var}/pseudonym.key"
    # The key of the data-subject index (README "Who looked at my data"): each access record names the subjects of
    # the rows it answered by HMAC-SHA256 of their ID number or credit code under it, never the number. Kept outside
    # the platform database; created (32 random bytes, mode 0600) where missing outside production, required in
    # production; every process of one platform must share it, and changing it loses every subject's history.
    subject_key_file: str = "{var}/subject.key"
    # How stale a process's view of the policies and catalog may be when another process changes them and
    # its notification is lost: the policy version in the database is checked this often (the backstop).
    refresh_seconds: float = 0.5
    # How long a process may go on deciding with policies no check has confirmed (the platform database unreachable,
    # every rebuild failing): after that every query is refused (503 POLICY_UNCONFIRMED) rather than decided on
    # policies that may have changed; never less than 2 x refresh_seconds. 0: never refused. Only where
    # refresh_seconds > 0.
    policy_stale_seconds: float = 30.0
    # Log lines as text, or as one JSON object a line carrying the request id and trace id of the request being
    # handled (python-json-logger); govshare/logs.py.
    log_format: str = "text"
    # Where a policy change is announced to every process at once ("" for none: the backstop alone).
    # redis://host:port/db; every process sharing one platform database must name the same Redis.
    policy_notify_url: str = ""
    # The policy console (admin/): a staff account is locked for staff_lockout_minutes after
    # staff_max_failures failed sign-ins in a row; a session ends after staff_session_hours.
    staff_max_failures: int = 5
    staff_lockout_minutes: int = 15
    staff_session_hours: float = 8.0
    staff_min_password_length: int = 12
    # Sign-in attempts (console and POST /admin/session) per client address and per user name ("" for no
    # limit), counted where the request count is (rate_limit_url); over either: HTTP 429 with Retry-After.
    staff_sign_ins_per_address: str = "30/minute"
    staff_sign_ins_per_user: str = "10/minute"
    # Who may read GET /metrics (govshare/metrics.py): empty, only a client on this machine's loopback that did not come
    # through a proxy; set (at least 32 characters), any scraper sending it as "Authorization: Bearer <token>".
    metrics_token: str = ""
    web_dir: Path = field(default=Path(__file__).resolve().parent.parent / "web" / "static")
    # Bench only (bench/bench.py measures what enforcement costs): False skips decisions, masks and access
    # records. No configuration can set it (load_settings refuses it), and a production server refuses it.
    enforce: bool = True

    def expand(self, url: str) -> str:
        return url.replace("{var}", _resolved(self.var_dir, os.getcwd()))

    def origins(self) -> tuple[str, ...]:
        """``cors_origins`` as a tuple (empty: CORS off)."""
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @property
    def requires_operator(self) -> bool:
        """Whether a request without X-Operator is refused: ``operator_required`` where set, else ``production``."""
        return self.production if self.operator_required is None else self.operator_required

    @property
    def platform_url(self) -> str:
        return self.expand(self.database_url)


@functools.lru_cache(maxsize=64)
def _resolved(path: Path, cwd: str) -> str:
    # Resolving reads every folder on the way (a system call each); it is asked for on every source query.
    return str(path.resolve())


def _coerce(name: str, raw: object, target: object) -> object:
    try:
        if isinstance(target, bool) or target is None:  # None: a switch whose default follows another setting
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        if isinstance(target, (int, float)) and isinstance(raw, bool):
            raise ValueError  # TOML true is not a number
        if isinstance(target, int):
            if isinstance(raw, float):
                raise ValueError  # 50.9 is not a page size; refuse rather than truncate
            return int(raw)  # type: ignore[arg-type]
        if isinstance(target, float):
            return float(raw)  # type: ignore[arg-type]
        if isinstance(target, Path):
            return Path(str(raw))
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r}: cannot read {raw!r} as {type(target).__name__}") from None


def load_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    names = {f.name for f in dataclasses.fields(Settings)} - NOT_CONFIGURABLE
    values: dict[str, object] = {}

    config_path = env.get("GOVSHARE_CONFIG")
    path = Path(config_path) if config_path else Path("govshare.toml")
    if path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        for key, raw in document.items():
            if key not in names:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = raw
    elif config_path:
        raise ConfigError(f"GOVSHARE_CONFIG names {config_path}, which does not exist")

    for key, raw in env.items():
        if not key.startswith("GOVSHARE_") or key in OTHER_VARIABLES:
            continue
        name = key.lower()[9:]
        if name in NOT_CONFIGURABLE:
            raise ConfigError(f"{key}: setting {name!r} cannot be configured")
        if name not in names:
            raise unknown_variable(key, names)
        values[name] = raw
    refused = NOT_CONFIGURABLE & set(overrides)
    if refused:
        raise ConfigError(f"setting {', '.join(sorted(refused))!r} cannot be configured")
    values.update({k: v for k, v in overrides.items() if v is not None})

    coerced = {k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()}
    settings = dataclasses.replace(defaults, **coerced)
    if settings.trace_exporter not in TRACE_EXPORTERS:
        raise ConfigError(
            f"trace_exporter must be one of {', '.join(TRACE_EXPORTERS)}, not {settings.trace_exporter!r}"
        )
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {settings.log_format!r}")
    if settings.rate_limit_unavailable not in UNAVAILABLE_MODES:
        raise ConfigError(
            f"rate_limit_unavailable must be one of {', '.join(UNAVAILABLE_MODES)}, not {settings.rate_limit_unavailable!r}"
        )
    if settings.language not in LANGUAGES:
        raise ConfigError(f"language must be one of {', '.join(LANGUAGES)}, not {settings.language!r}")
    if not 1 <= settings.default_page_size <= settings.max_page_size:
        raise ConfigError("default_page_size must be between 1 and max_page_size")
    bad_origins = [o for o in settings.origins() if not ORIGIN.fullmatch(o)]
    if bad_origins:
        raise ConfigError(
            f"cors_origins: {', '.join(map(repr, bad_origins))} is no origin (scheme://host[:port], no path, not '*')"
        )
    if settings.audit_checkpoint_records < 0 or settings.audit_checkpoint_seconds < 0:
        raise ConfigError("audit_checkpoint_records and audit_checkpoint_seconds must be 0 (off) or more")
    if settings.audit_retention_days < RETENTION_MIN_DAYS:
        raise ConfigError(
            code="AUDIT_RETENTION_TOO_SHORT", days=settings.audit_retention_days, minimum=RETENTION_MIN_DAYS
        )
    if settings.metrics_token and len(settings.metrics_token) < METRICS_TOKEN_MIN:
        raise ConfigError(code="METRICS_TOKEN_TOO_SHORT", minimum=METRICS_TOKEN_MIN)
    if settings.workers < 1:
        raise ConfigError(code="WORKERS_INVALID", workers=settings.workers)
    return settings


def unknown_variable(variable: str, names: set[str]) -> ConfigError:
    """A GOVSHARE_* variable that is neither a setting nor one of OTHER_VARIABLES, with the closest known name."""
    known = sorted({n.upper() for n in names} | {v[9:] for v in OTHER_VARIABLES})  # compared without the prefix
    close = difflib.get_close_matches(variable.upper()[9:], known, n=1, cutoff=0.75)
    if close:
        return ConfigError(
            code="SETTING_VARIABLE_UNKNOWN_SUGGEST", variable=variable, suggestion="GOVSHARE_" + close[0]
        )
    return ConfigError(code="SETTING_VARIABLE_UNKNOWN", variable=variable)
