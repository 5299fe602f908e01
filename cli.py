"""The ``govshare`` command: serve, build the demo, load and check the catalog, manage keys, grants, the policy
rules (export, import, validate, explain, history, rollback) and security staff accounts.

Messages are in Chinese by default; set GOVSHARE_LANGUAGE=en for English.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import sys
import unicodedata
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy import select

import migrations
from admin import operations, reports
from admin.labels import label
from admin.operations import CommandRuntime, Operator
from applications import process
from applications.process import recompute_deadlines
from applications.workdays import ScheduleError, load_calendar, load_schedule_file, store_schedule
from audit import archives
from audit.chain import CHAINS, live_start
from audit.chain import verify as verify_chain
from audit.checkpoints import Checkpointer, check_checkpoints, generate_key, public_key_text, verification_keys
from audit.records import AccessRecord, AuditWriter
from catalog import store as catalog_store
from catalog import workflow
from catalog.conformance import check_sources
from catalog.loader import load_catalog, load_entries
from catalog.model import Catalog
from corrections.process import recompute_deadlines as recompute_report_deadlines
from govshare import logs
from govshare.clock import CHINA
from govshare.config import LANGUAGES, Settings, load_settings
from govshare.errors import CatalogError, ConfigError, GovshareError
from govshare.i18n import message
from govshare.keys import DEFAULT_ROLES, ROLES, api_keys, create_key, platform_secret, revoke_key
from govshare.platformdb import make_engine
from govshare.subjects import SubjectKey
from oversight import evaluation as oversight_evaluation
from oversight import exports
from oversight import usage as usage_figures
from policies import disclosure, documents
from policies.store import load_policy_set
from policies.tables import grants
from resolvers import subjects
from schema.builder import build_schema
from schema.documents import check_document

log = logs.logger(__name__)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as exc:  # told in GOVSHARE_LANGUAGE's language where that one is readable
        lang = os.environ.get("GOVSHARE_LANGUAGE", "")
        raise click.ClickException(exc.text(lang if lang in LANGUAGES else "zh-CN")) from None


def _say(settings: Settings | None, code: str, **params) -> str:
    """A line of this command in the configured language (zh-CN unless GOVSHARE_LANGUAGE=en)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError:
            return message(code, "zh-CN", **params)
    return message(code, settings.language, **params)


def _fail(settings: Settings, exc: GovshareError) -> None:
    if isinstance(exc, (CatalogError, documents.PolicyInvalid)):
        lines = [message(exc.code, settings.language, **exc.params)] + [
            "  " + p.render(settings.language) for p in exc.problems
        ]
        raise click.ClickException("\n".join(lines))
    raise click.ClickException(f"[{exc.code}] {message(exc.code, settings.language, **exc.params)}")


def runs_async(command):
    """Run an async command body with the settings and the platform database, reporting errors by code. A
    database at another schema revision than this code is refused before anything is done (migrations/)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        settings = _settings()

        async def main():
            engine = make_engine(settings.platform_url)
            try:
                await migrations.ensure_current(engine, production=settings.production)
                return await command(settings, engine, *args, **kwargs)
            finally:
                await engine.dispose()

        try:
            return asyncio.run(main())
        except GovshareError as exc:
            _fail(settings, exc)

    return wrapper


def _runtime(settings: Settings, engine) -> CommandRuntime:
    """What the shared operations (admin/operations.py, applications/process.py) run on in a command: the
    catalog and policies in force as a server has them, and changes announced to every server at once."""
    return CommandRuntime(settings, engine)


async def _catalog_in_force(engine) -> Catalog:
    async with engine.connect() as conn:
        catalog = await catalog_store.current(conn)
    if catalog is None:
        raise GovshareError("CATALOG_NOT_LOADED")
    return catalog


class _Commands(click.Group):
    """The command tree, its help told in the configured language (zh-CN unless GOVSHARE_LANGUAGE=en)."""

    def main(self, *args, **kwargs):
        texts = _help_texts(self)
        try:
            if _language() == "en":
                for where, target in texts:
                    # A command added without its English help shows its Chinese one rather than break every
                    # command; tests/test_new_user.py fails on it.
                    target.help = ENGLISH_HELP.get(where, target.help)
            return super().main(*args, **kwargs)
        finally:  # the tree is shared by every invocation in this process (tests run several)
            for (_, target), text in texts.items():
                target.help = text


def _language() -> str:
    try:
        return load_settings().language
    except ConfigError:  # the command itself says what is wrong; its help is still readable
        return "zh-CN"


def _help_texts(group: click.Group) -> dict[tuple[str, click.Command | click.Option], str | None]:
    """("serve --host", the option) or ("key list", the command) -> its help (Chinese), over the whole tree."""
    texts: dict = {}
    stack: list[tuple[str, click.Command]] = [("", group)]
    while stack:
        path, command = stack.pop()
        texts[(path, command)] = command.help
        texts |= {
            (f"{path} {p.opts[0]}".strip(), p): p.help for p in command.params if isinstance(p, click.Option) and p.help
        }
        if isinstance(command, click.Group):
            stack += [(f"{path} {name}".strip(), child) for name, child in command.commands.items()]
    return texts


@click.group(cls=_Commands, help="govshare: 政务信息资源共享平台联机查询服务。")
def main() -> None:
    try:
        log_format = load_settings().log_format
    except ConfigError:  # the command itself says what is wrong
        log_format = "text"
    logs.configure(log_format)


@main.command(help="启动查询服务（默认 http://127.0.0.1:8000，GraphiQL 在 /graphql）。")
@click.option("--host", default=None, help="监听地址（默认取配置 host）。")
@click.option("--port", default=None, type=int, help="监听端口（默认取配置 port）。")
@click.option(
    "--workers",
    default=None,
    type=int,
    help="工作进程数（默认取配置 workers，即 1）：各进程共用同一端口与平台数据库，退出的进程会被自动重启；生产环境每个 CPU 核心一个。",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    import uvicorn

    from server import create_app

    settings = _settings(workers=workers)
    if settings.workers > 1:
        _shared_platform_database(settings)
    try:
        app = create_app(settings)
    except GovshareError as exc:  # e.g. a production checkpoint file or signing key under var/
        _fail(settings, exc)

    async def schema_revision():  # refused here with its code, rather than as a failed start-up inside uvicorn
        engine = make_engine(settings.platform_url)
        try:
            await migrations.ensure_current(engine, production=settings.production)
        finally:
            await engine.dispose()

    try:
        asyncio.run(schema_revision())
    except GovshareError as exc:
        _fail(settings, exc)
    # JSON lines: uvicorn's own loggers too go through the one handler (govshare/logs.py) instead of its text ones.
    log_config = {"log_config": None} if settings.log_format == "json" else {}
    host, port = host or settings.host, settings.port if port is None else port
    if settings.workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="info", **log_config)
        return
    # The app built here only checked that a server can start (keys, secrets, checkpoint file): each worker builds
    # its own, from the same settings.
    asyncio.run(app.state.runtime.stop())
    _serve_workers(dataclasses.replace(settings, host=host, port=port), log_config)


def _shared_platform_database(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(settings.platform_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise click.ClickException(
            f"[WORKERS_NEED_SHARED_DATABASE] {message('WORKERS_NEED_SHARED_DATABASE', settings.language, database=url)}"
        )


HEALTH_CHECK_SECONDS = 10


def _serve_workers(settings: Settings, log_config: dict) -> None:
    """``settings.workers`` processes serving one socket under uvicorn's supervisor, which replaces a worker that
    dies (or stops answering its health check), rolls them over on SIGHUP, and on SIGTERM or Ctrl-C stops every
    worker (each finishes its requests, writes its last checkpoint and closes its pools) before it exits itself.
    Every worker is handed ``settings`` as resolved here, pickled with its configuration (govshare/workers.py), and
    builds its app with ``server.worker_app``. The schema revision was checked here, once; each worker
    only checks it again as it starts (migrations apply nothing on their own)."""
    from uvicorn.config import STARTUP_FAILURE

    from govshare.metrics import multiprocess_directory
    from govshare.workers import Supervisor, WorkerConfig, light_main

    shared = [
        name
        for name, limit, url in (
            ("rate_limit", settings.rate_limit, settings.rate_limit_url),
            ("cost_budget", settings.cost_budget, settings.rate_limit_url),
            ("staff_sign_ins_per_address", settings.staff_sign_ins_per_address, settings.rate_limit_url),
            ("staff_sign_ins_per_user", settings.staff_sign_ins_per_user, settings.rate_limit_url),
        )
        if limit and url.startswith("memory://")
    ]
    if shared:
        log.warning(
            "%d workers count %s in memory:// each: a key may be answered up to %d times the limit; set "
            "rate_limit_url to a Redis all workers share (redis://host:port/db)",
            settings.workers,
            ", ".join(shared),
            settings.workers,
        )
    config = WorkerConfig(
        settings,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # How long a new worker (SIGHUP) may take to start serving, and a worker to answer the supervisor's health
        # check (answered by a thread of its own, also while the app is built): uvicorn's 5 s is less than a start-up
        # on a loaded machine or with a large catalog.
        timeout_worker_healthcheck=HEALTH_CHECK_SECONDS,
        log_level="info",
        **log_config,
    )
    sock = config.bind_socket()
    supervisor = Supervisor(config, sockets=[sock])
    try:
        # Each worker answers its health check before it imports the app (govshare/workers.py), and writes its metrics
        # to files in a directory of this start's own, which /metrics sums (govshare/metrics.py).
        with light_main(), multiprocess_directory():
            supervisor.run()
    finally:
        sock.close()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        sys.exit(STARTUP_FAILURE)  # as one process that fails to start: its log says why


@main.command(
    help="在 ./var/ 下生成演示世界：各部门数据库、演示目录、应用密钥（写入 var/demo-keys.json）、授权与限制规则。已生成则不重复生成。"
)
@click.option("--force", is_flag=True, help="删除已有的演示数据（包括平台库与访问记录）后重新生成。")
@click.option(
    "--engine",
    type=click.Choice(["sqlite", "postgres", "mariadb"]),
    default="sqlite",
    show_default=True,
    help="各部门数据库所用的数据库引擎（postgres、mariadb 使用配置 demo_postgres_url、demo_mariadb_url 指向的服务器）。",
)
@click.option(
    "--engine-for",
    "engine_for",
    multiple=True,
    metavar="DEPT=ENGINE",
    help="单个部门改用的引擎，如 --engine-for police=postgres；可重复。",
)
def demo(force: bool, engine: str, engine_for: tuple[str, ...]) -> None:
    from demo.build import ENGINES, build_demo

    settings = _settings()
    engines = _pairs(engine_for, "--engine-for")
    for name in engines.values():
        if name not in ENGINES:
            raise click.BadParameter(f"{name!r} ∉ {{{', '.join(ENGINES)}}}", param_hint="--engine-for")
    try:
        # The platform database's upgrade steps are told; its creation is part of "built", and "already at head" of
        # "already there, unchanged".
        world = asyncio.run(
            build_demo(
                settings,
                force=force,
                engine=engine,
                engines=engines,
                say=lambda code, params: (
                    None if code in ("DB_CREATED", "DB_NOTHING_TO_DO") else click.echo(_say(settings, code, **params))
                ),
            )
        )
    except GovshareError as exc:
        _fail(settings, exc)
    except ValueError as exc:  # an engine or department the demo does not know
        raise click.BadParameter(str(exc), param_hint="--engine-for") from None
    keys_file = settings.var_dir / "demo-keys.json"
    if world.built:
        click.echo(_say(settings, "CLI_DEMO_BUILT", var=settings.var_dir, count=len(world.keys), keys=keys_file))
    else:
        click.echo(_say(settings, "CLI_DEMO_EXISTS", var=settings.var_dir, keys=keys_file))


@main.group(help="资源目录：加载、检查与导出；部门编报、审核、发布、撤销与目录版本。")
def catalog() -> None:
    pass


@catalog.command(
    "load",
    help="校验并直接加载目录文件，不经审核（平台运维）。PATH 为一个 .toml 文件、其所在目录或一个 .xlsx 工作簿；"
    "只替换文件所列部门的条目，其他部门的条目保持不变；任何错误都会整体拒绝，现行目录保持不变。",
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--by", "loaded_by", default="cli", show_default=True, help="操作人。")
@click.option("--reason", default="", help="加载理由（记入目录版本与办理记录）。")
@runs_async
async def catalog_load(settings: Settings, engine, path: Path, loaded_by: str, reason: str) -> None:
    async with engine.connect() as conn:
        base = await catalog_store.current(conn)
    new, loaded, listed = load_entries(path, base)
    # The same conformance check the server makes: a resource whose source does not fit refuses the load.
    mismatches, unreachable = [], []
    for kind, text in await _source_findings(settings, new):
        (unreachable if kind == "unreachable" else mismatches).append(text)
    for text in unreachable:  # an outage is not the catalog's fault: load, and say so
        click.echo(text, err=True)
    if mismatches:
        for text in mismatches:
            click.echo(text, err=True)
        raise click.ClickException(_say(settings, "CLI_CATALOG_MISMATCHES", count=len(mismatches)))
    if base is not None:
        for code in sorted(c for c, r in base.resources.items() if r.provider in loaded and c not in listed):
            click.echo(_say(settings, "CLI_CATALOG_KEPT", resource=code), err=True)
        for code in sorted(c for c in listed if c in base.resources and base.resources[c].status == "retired"):
            if new.resources[code].status == "published":
                click.echo(_say(settings, "CATALOG_REPUBLISHED", resource=code), err=True)
    async with engine.begin() as conn:
        await workflow.serialised(conn)
        now_in_force = await catalog_store.current(conn)
        if (now_in_force.version if now_in_force else 0) != (base.version if base else 0):
            raise GovshareError("CATALOG_CHANGED_MEANWHILE")  # merged into a catalog no longer in force: load again
        version = await catalog_store.publish(
            conn,
            new,
            source=str(path),
            loaded_by=loaded_by,
            reason=reason or None,
            department=next(iter(loaded)) if len(loaded) == 1 else None,
        )
        await workflow.record_load(
            conn,
            workflow.Actor(COORDINATOR_OFFICE, loaded_by, operator=True),
            version=version,
            departments=loaded,
            reason=reason or None,
            now=datetime.now(UTC),
        )
        # Loaded even so (a catalog that newly declares what a value carries must come into force to be enforced):
        # each mask the new catalog shows undone is reported, and the query service denies the masked item.
        undone = disclosure.find_undone(new, (await load_policy_set(conn)).grants, now=datetime.now(UTC))
    await _runtime(settings, engine).changed()
    for found in undone:
        click.echo(
            _say(settings, "CLI_CATALOG_MASK_UNDONE", detail=message(found.code, settings.language, **found.params())),
            err=True,
        )
    click.echo(
        _say(
            settings,
            "CLI_CATALOG_LOADED",
            version=version,
            departments=len(new.departments),
            resources=len(new.published()),
        )
    )


async def _source_findings(settings: Settings, catalog: Catalog) -> list[tuple[str, str]]:
    """(kind, line) per published resource: a missing table or column, a type that does not fit, an
    unreachable source."""
    findings = []
    for code, mismatches in sorted((await check_sources(catalog, settings)).items()):
        for mismatch in mismatches:
            where = f"{code}.{mismatch.column}" if mismatch.column else code
            key = "SOURCE_UNAVAILABLE" if mismatch.kind == "unreachable" else "SOURCE_MISMATCH"
            text = message(key, settings.language, resource=code, detail=mismatch.detail)
            findings.append(
                (mismatch.kind, f"{where}: {text}" + (f" ({mismatch.detail})" if key == "SOURCE_UNAVAILABLE" else ""))
            )
    return findings


@catalog.command(
    "check",
    help="检查目录：校验目录文件（给出 PATH 时）或现行目录，并连接各数据源核对表和字段。不改动任何内容；"
    "有问题时以非零状态退出。",
)
@click.argument("path", required=False, type=click.Path(path_type=Path))
@runs_async
async def catalog_check(settings: Settings, engine, path: Path | None) -> None:
    try:
        checked = load_catalog(path) if path else await _catalog_in_force(engine)
    except CatalogError as exc:  # told as a check's finding: nothing was loaded, nothing refused
        lines = [_say(settings, "CLI_CATALOG_CHECK_INVALID", count=len(exc.problems))]
        lines += ["  " + p.render(settings.language) for p in exc.problems]
        raise click.ClickException("\n".join(lines)) from None
    problems = [text for _, text in await _source_findings(settings, checked)]
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise click.ClickException(_say(settings, "CLI_CATALOG_MISMATCHES", count=len(problems)))
    click.echo(_say(settings, "CLI_CATALOG_OK", resources=len(checked.published())))


@catalog.command(
    "export",
    help="导出目录为各部门交换用的 .xlsx 工作簿（资源目录表每个信息项一行，另有部门、履职事项、关联表）；"
    "默认导出现行目录，--from 导出目录文件。用 catalog load/check 读入同样格式的工作簿。",
)
@click.option(
    "--format", "file_format", type=click.Choice(["xlsx"]), default="xlsx", show_default=True, help="文件格式。"
)
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="写入的文件。")
@click.option("--department", "department", default=None, help="只导出该部门（其履职事项、资源与关联）。")
@click.option(
    "--from", "source", type=click.Path(path_type=Path), default=None, help="导出这个目录文件或目录，而不是现行目录。"
)
@runs_async
async def catalog_export(
    settings: Settings, engine, file_format: str, output: Path, department: str | None, source: Path | None
) -> None:
    from catalog.xlsx import write_workbook

    exported = load_catalog(source) if source else await _catalog_in_force(engine)
    if department is not None and department not in exported.departments:
        raise GovshareError("DEPARTMENT_NOT_FOUND", department=department)
    chosen = [department] if department else list(exported.departments)
    write_workbook(exported, output, chosen)
    resources = [r for r in exported.resources.values() if r.provider in chosen]
    click.echo(
        _say(
            settings,
            "CLI_CATALOG_EXPORTED",
            departments=len(chosen),
            resources=len(resources),
            items=sum(len(r.items) for r in resources),
            path=output,
        )
    )


def _freshness_line(settings: Settings, state) -> str:
    """One resource's freshness: code, provider, cycle, state, last change and due-by in China time."""

    def when(moment: datetime | None) -> str:
        return _china(moment) if moment is not None else "-"

    state_text = _say(settings, f"FRESHNESS_{state.status.upper()}")
    problem = f"  [{state.error}]" if state.error else ""
    return (
        f"{state.resource:<24} {state.provider:<8} {state.update_cycle:<11} {state_text}  "
        + _say(settings, "CLI_FRESHNESS_TIMES", last_change=when(state.last_change), due_by=when(state.due_by))
        + problem
    )


@catalog.command(
    "overdue",
    help="列出逾期未更新的资源（按《资源目录》公布的更新周期，第十六、二十条）：资源、提供部门、更新周期、"
    "数据源最后更新时间、应更新期限。数据取自平台记录的各数据源最后更新时间；--check 先读取各数据源并记录。",
)
@click.option("--department", default="", help="只列出该提供部门的资源。")
@click.option(
    "--check", is_flag=True, help="先读取每个数据源的最后更新时间并记录（服务按 freshness_check_seconds 定时读取）。"
)
@click.option("--all", "every", is_flag=True, help="列出全部已发布资源的更新状态，而不只是逾期的。")
@runs_async
async def catalog_overdue(settings: Settings, engine, department: str, check: bool, every: bool) -> None:
    runtime = _runtime(settings, engine)
    states = await operations.freshness_states(runtime, provider=department, check=check)
    shown = states if every else [s for s in states if s.overdue]
    for state in shown:
        click.echo(_freshness_line(settings, state))
    if not every:
        click.echo(_say(settings, "CLI_OVERDUE_COUNT", count=len(shown)))
        unknown = [s.resource for s in states if s.status == "unknown"]
        if unknown:
            click.echo(_say(settings, "CLI_FRESHNESS_UNKNOWN", resources=", ".join(unknown)))


def _operator(by: str) -> workflow.Actor:
    """The platform's operator on the command line: acts for the department a file names, and as the coordinating
    authority's office (共享主管部门) for review."""
    return workflow.Actor(COORDINATOR_OFFICE, by, ("reviewer", "coordinator"), operator=True)


def _submission_lines(settings: Settings, item: workflow.Submission) -> list[str]:
    when = item.created_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"{item.id}  {item.department}  {item.status}  {when}  {item.created_by}  "
        f"{', '.join(item.changed) or '-'}  {item.reason or ''}".rstrip()
    ]
    if item.decided_by:
        lines.append(f"  → {item.decided_by}: {item.reason or ''}")
    for finding in item.findings:
        detail = message(finding.code, settings.language, resource=finding.resource, detail=finding.detail)
        lines.append(f"  [{finding.stage} {finding.severity}] {finding.resource} · {finding.field}: {detail}")
    return lines


@catalog.command(
    "submit",
    help="部门编报本部门的目录条目。PATH 为只含一个部门的 .toml 文件或 .xlsx 工作簿（错误逐单元格指出，与 catalog load "
    "相同）：新增或变更的资源先为草稿，送审后由共享主管部门审核；提交时即核对数据源，核对结果逐字段记入编报。",
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="编报理由。")
@click.option("--by", "by", required=True, help="操作人。")
@click.option("--draft", is_flag=True, help="只存为草稿，稍后用 catalog send 送审。")
@runs_async
async def catalog_submit(settings: Settings, engine, path: Path, reason: str, by: str, draft: bool) -> None:
    now = datetime.now(UTC)
    workbook = path.read_bytes() if path.suffix.lower() == ".xlsx" else None
    async with engine.begin() as conn:
        submission_id = await workflow.submit(
            conn,
            settings,
            _operator(by),
            source=str(path),
            text="" if workbook is not None else path.read_text(encoding="utf-8"),
            reason=reason,
            now=now,
            draft=draft,
            workbook=workbook,
        )
        item = await workflow.read(conn, submission_id)
    click.echo(
        _say(
            settings,
            "CLI_CATALOG_SUBMITTED",
            submission=item.id,
            department=item.department,
            state=item.status,
            resources=", ".join(item.changed) or "-",
            errors=sum(f.severity == "error" for f in item.findings),
            warnings=sum(f.severity == "warning" for f in item.findings),
        )
    )
    for line in _submission_lines(settings, item)[1:]:
        click.echo(line)


@catalog.command("send", help="把目录编报草稿送交审核（重新核对数据源）。")
@click.argument("submission_id")
@click.option("--by", "by", required=True, help="操作人。")
@runs_async
async def catalog_send(settings: Settings, engine, submission_id: str, by: str) -> None:
    async with engine.begin() as conn:
        await workflow.send(conn, settings, _operator(by), submission_id, now=datetime.now(UTC))
    click.echo(_say(settings, "CLI_CATALOG_SENT", submission=submission_id))


@catalog.command("submissions", help="列出目录编报（状态、变更资源、理由、审核意见与逐字段的数据源核对结果）。")
@click.option("--department", default=None, help="只列此部门的编报。")
@click.option(
    "--status",
    default=None,
    type=click.Choice(["draft", "under_review", "returned", "published"]),
    help="只列此状态的编报。",
)
@runs_async
async def catalog_submissions(settings: Settings, engine, department: str | None, status: str | None) -> None:
    async with engine.connect() as conn:
        found = await workflow.listing(conn, department=department, status=status)
    if not found:
        click.echo(_say(settings, "CLI_CATALOG_NO_SUBMISSIONS"))
    for item in found:
        for line in _submission_lines(settings, item):
            click.echo(line)


@catalog.command("approve", help="共享主管部门审核通过并发布目录编报（发布前再次核对数据源，有错误则不发布）。")
@click.argument("submission_id")
@click.option("--reason", required=True, help="审核意见。")
@click.option("--by", "by", required=True, help="操作人（不能是编报人本人）。")
@runs_async
async def catalog_approve(settings: Settings, engine, submission_id: str, reason: str, by: str) -> None:
    runtime = _runtime(settings, engine)
    async with engine.begin() as conn:
        version = await workflow.approve(
            conn, settings, _operator(by), submission_id, reason=reason, now=datetime.now(UTC)
        )
    await runtime.changed()
    click.echo(_say(settings, "CLI_CATALOG_PUBLISHED", submission=submission_id, version=version))


@catalog.command("return", help="共享主管部门退回目录编报，须说明理由。")
@click.argument("submission_id")
@click.option("--reason", required=True, help="退回理由。")
@click.option("--by", "by", required=True, help="操作人。")
@runs_async
async def catalog_return(settings: Settings, engine, submission_id: str, reason: str, by: str) -> None:
    async with engine.begin() as conn:
        await workflow.return_(conn, _operator(by), submission_id, reason=reason, now=datetime.now(UTC))
    click.echo(_say(settings, "CLI_CATALOG_RETURNED", submission=submission_id, reason=reason))


@catalog.command("retire", help="撤销已发布的资源（退出共享），须说明理由；资源保留在目录中，其共享授权随之停止。")
@click.argument("resource")
@click.option("--reason", required=True, help="撤销理由。")
@click.option("--by", "by", required=True, help="操作人。")
@runs_async
async def catalog_retire(settings: Settings, engine, resource: str, reason: str, by: str) -> None:
    runtime = _runtime(settings, engine)
    async with engine.begin() as conn:
        version = await workflow.retire(conn, _operator(by), resource, reason=reason, now=datetime.now(UTC))
    await runtime.changed()
    click.echo(_say(settings, "CLI_CATALOG_RETIRED", resource=resource, version=version))


@catalog.command(
    "history", help="目录的全部版本：版本号、时间、操作人、变更类型、部门、理由（可只看某个资源变更过的版本）。"
)
@click.option("--resource", default=None, help="只列此资源变更过的版本。")
@runs_async
async def catalog_history(settings: Settings, engine, resource: str | None) -> None:
    async with engine.connect() as conn:
        found = await catalog_store.versions(conn, resource)
    for v in found:
        when = v.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{v.version}  {when}  {v.by}  {v.change}  {v.department or '*'}  {v.reason}".rstrip())


@catalog.command("diff", help="逐字段比较目录的两个版本（A 为旧版，B 为新版）。")
@click.argument("a", type=int)
@click.argument("b", type=int)
@runs_async
async def catalog_diff(settings: Settings, engine, a: int, b: int) -> None:
    async with engine.connect() as conn:
        changes = catalog_store.diff(await catalog_store.document(conn, a), await catalog_store.document(conn, b))
    if not changes:
        click.echo(_say(settings, "CLI_CATALOG_NO_DIFF"))
    for change in changes:
        where = f"{change.entry} · {change.field}" if change.field else change.entry
        click.echo(f"{where}: {_shown(change.before)} → {_shown(change.after)}")


def _shown(value) -> str:
    if value is None:
        return "∅"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@main.group(help="GraphQL 模式：打印现行目录生成的模式。")
def schema() -> None:
    pass


@schema.command(
    "sdl",
    help="打印现行目录（已通过数据源核对的已发布资源）生成的完整 GraphQL 模式（SDL）。加 --federation 时为 Apollo "
    "Federation v2 子图 SDL（含 @link 与各资源类型的 @key），供 @apollo/composition 离线合成超图；"
    "它列出全部资源，只交给网关的运维人员。",
)
@click.option("--federation", is_flag=True, help="打印 Federation v2 子图 SDL（含 @link、@key、_service、_entities）。")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="写入文件而不是标准输出。")
@runs_async
async def schema_sdl(settings: Settings, engine, federation: bool, output: Path | None) -> None:
    import dataclasses

    from graphql import print_schema

    from catalog.conformance import without_nonconforming
    from schema.builder import build_schema

    catalog = await _catalog_in_force(engine)
    # The schema a server builds: the resources whose sources conform, whatever the mode (the whole subgraph)
    catalog = without_nonconforming(catalog, await check_sources(catalog, settings))
    built = build_schema(catalog, dataclasses.replace(settings, production=False))
    text = built.federation_sdl() if federation else print_schema(built._schema)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


@main.group(help="应用密钥：创建、吊销、列出；登记应用可发送的 GraphQL 文档（可信文档）。")
def key() -> None:
    pass


@key.command("create", help="为部门的应用创建密钥。密钥只显示这一次，平台只保存其散列值。")
@click.option("--department", required=True, help="部门编码，如 market。")
@click.option("--app", "application", required=True, help="应用名称。")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(ROLES),
    help="角色（可重复）：applicant 申请、reviewer 审核本部门资源的申请、coordinator 协调、auditor 只读审计。默认 applicant 和 reviewer。",
)
@click.option(
    "--trusted-documents-only",
    "trusted_only",
    is_flag=True,
    help="该密钥只能发送为其应用登记的 GraphQL 文档（govshare key documents add）。",
)
@runs_async
async def key_create(
    settings: Settings, engine, department: str, application: str, roles: tuple[str, ...], trusted_only: bool
) -> None:
    catalog = await _catalog_in_force(engine)
    async with engine.begin() as conn:
        key_id, secret = await create_key(
            conn,
            department=department,
            application=application,
            departments=catalog.departments,
            roles=roles or DEFAULT_ROLES,
            trusted_documents_only=trusted_only,
        )
    click.echo(
        _say(settings, "CLI_KEY_CREATED", key_id=key_id, department=department, application=application), err=True
    )
    click.echo(secret)


@key.command("revoke", help="吊销密钥（按密钥编号）。")
@click.argument("key_id")
@runs_async
async def key_revoke(settings: Settings, engine, key_id: str) -> None:
    async with engine.begin() as conn:
        await revoke_key(conn, key_id)
    await _runtime(settings, engine).changed()  # every server drops the keys it has seen
    click.echo(_say(settings, "CLI_KEY_REVOKED", key_id=key_id))


@key.command("list", help="列出密钥（不含密钥本身）。")
@runs_async
async def key_list(settings: Settings, engine) -> None:
    async with engine.connect() as conn:
        for row in await conn.execute(select(api_keys).order_by(api_keys.c.created_at)):
            state = (
                _say(settings, "CLI_KEY_STATE_REVOKED", at=f"{row.revoked_at:%Y-%m-%d %H:%M}")
                if row.revoked_at
                else _say(settings, "CLI_KEY_STATE_ACTIVE")
            )
            if row.trusted_documents_only:
                state += f", {_say(settings, 'CLI_KEY_STATE_TRUSTED_ONLY')}"
            click.echo(f"{row.id}  {_pad(row.department, 10)} {_pad(row.application, 24)} {state}")


@key.group(
    "documents",
    help="可信文档：应用登记的 GraphQL 文档。受限的密钥（key create --trusted-documents-only、key documents only、"
    "或配置 trusted_documents_required）只能发送这些文档，按文本或按编号（sha256:…）。文档属于密钥所在的应用（部门与应用名称），"
    "换发的密钥沿用。每次登记、撤回和限制都是办理记录。",
)
def key_documents() -> None:
    pass


@key_documents.command(
    "add",
    help="为密钥所在的应用登记 .graphql 文件（每个文件一份文档，可含多个操作），先按当前目录生成的模式校验；"
    "有一份无效则一份也不登记。输出每份文档的编号。",
)
@click.argument("key_id")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", "registered_by", required=True, help="登记人。")
@click.option("--reason", default=None, help="登记理由（可选）。")
@runs_async
async def key_documents_add(
    settings: Settings, engine, key_id: str, files: tuple[Path, ...], registered_by: str, reason: str | None
) -> None:
    runtime = _runtime(settings, engine)
    await runtime.refresh()  # the catalog in force as a server has it: the schema a request is validated against
    schema = build_schema(runtime.catalog, settings)._schema
    texts = []
    for path in files:
        try:
            texts.append((path.name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            raise GovshareError("DOCUMENT_INVALID", name=path.name, detail=str(exc)) from None
    done = await operations.register_documents(
        runtime,
        Operator(registered_by),
        key_id,
        texts,
        check=lambda name, text: check_document(schema, name, text, settings, settings.language),
        reason=reason,
    )
    for registration in done:
        code = "CLI_DOCUMENT_REGISTERED" if registration.new else "CLI_DOCUMENT_ALREADY"
        ops = ", ".join(o or "-" for o in registration.operations)
        click.echo(_say(settings, code, id=registration.id, name=registration.name, operations=ops))


@key_documents.command("list", help="列出密钥所在应用登记的文档（编号、文件名、操作、登记人与时间）。")
@click.argument("key_id")
@runs_async
async def key_documents_list(settings: Settings, engine, key_id: str) -> None:
    application, documents_in_force = await operations.trusted_documents(_runtime(settings, engine), key_id)
    if not documents_in_force:
        click.echo(_say(settings, "CLI_DOCUMENTS_NONE", application=application))
    for doc in documents_in_force:
        ops = ", ".join(o or "-" for o in doc.operations)
        click.echo(f"{doc.id}  {doc.name}  [{ops}]  {doc.registered_by}  {_china(doc.registered_at)}")


@key_documents.command("remove", help="撤回已登记的文档（按编号），须说明理由；此后该应用的密钥不能再发送它。")
@click.argument("key_id")
@click.argument("document_id")
@click.option("--reason", required=True, help="撤回理由。")
@click.option("--by", "withdrawn_by", required=True, help="撤回人。")
@runs_async
async def key_documents_remove(
    settings: Settings, engine, key_id: str, document_id: str, reason: str, withdrawn_by: str
) -> None:
    await operations.withdraw_document(
        _runtime(settings, engine), Operator(withdrawn_by), key_id, document_id, reason=reason
    )
    click.echo(_say(settings, "CLI_DOCUMENT_WITHDRAWN", document=document_id))


@key_documents.command("only", help="限制密钥只能发送已登记的文档；--off 解除限制。")
@click.argument("key_id")
@click.option("--off", is_flag=True, help="解除限制。")
@click.option("--by", "changed_by", required=True, help="操作人。")
@click.option("--reason", default=None, help="理由（可选）。")
@runs_async
async def key_documents_only(
    settings: Settings, engine, key_id: str, off: bool, changed_by: str, reason: str | None
) -> None:
    runtime = _runtime(settings, engine)
    if not await operations.restrict_key(runtime, Operator(changed_by), key_id, only=not off, reason=reason):
        click.echo(_say(settings, "CLI_DOCUMENTS_ONLY_UNCHANGED", key_id=key_id))
        return
    application, _ = await operations.trusted_documents(runtime, key_id)
    code = "CLI_DOCUMENTS_ONLY_OFF" if off else "CLI_DOCUMENTS_ONLY_ON"
    click.echo(_say(settings, code, key_id=key_id, application=application))


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns: a Chinese character takes two."""
    shown = sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
    return text + " " * max(width - shown, 0)


def _china(moment: datetime) -> str:
    """A grant's start or end as explain and the console tell it: Beijing time."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M (UTC+8)")


# Direct grants by command are the coordinating authority's acts (共享主管部门); the operator is --by.
COORDINATOR_OFFICE = "coordinator"


def _day(text: str, *, end: bool = False) -> datetime:
    try:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), CHINA)
    except ValueError:
        raise click.BadParameter(_say(None, "CLI_BAD_DATE", value=text)) from None
    return moment + timedelta(days=1) if end else moment


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise click.BadParameter(_say(None, "CLI_BAD_PAIR", option=what, value=value))
        pairs[name] = rest
    return pairs


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@main.group(
    help="共享授权：由共享主管部门直接创建或撤销。部门的共享申请、提供部门的答复与协调经查询服务的 GraphQL 接口办理"
    "（applyForShare、approveApplication 等）。"
)
def grant() -> None:
    pass


@grant.command(
    "create",
    help="创建共享授权。例如：govshare grant create --consumer hrss --resource police.person "
    "--items idNumber,name --purposes hrss.insurance-enrolment --from 2026-01-01 --until 2026-12-31 "
    "--scope countyCode=371311 --mask idNumber=id_number",
)
@click.option("--consumer", required=True, help="使用部门编码。")
@click.option("--resource", required=True, help="资源编码，如 police.person。")
@click.option("--items", required=True, help="信息项，逗号分隔。")
@click.option("--purposes", required=True, help="批准的用途编码，逗号分隔。")
@click.option("--from", "valid_from", required=True, help="生效日期 YYYY-MM-DD（北京时间当日零时起）。")
@click.option("--until", "valid_until", required=True, help="截止日期 YYYY-MM-DD（含当日）。")
@click.option("--scope", multiple=True, help="行范围：信息项=值1,值2；可重复。")
@click.option("--mask", multiple=True, help="脱敏：信息项=方式（id_number, credit_code, phone, name, full）；可重复。")
@click.option("--legal-basis", default=None, help="依法共享的法律依据（不予共享类资源必填）。")
@click.option("--by", "created_by", default="coordinator", show_default=True, help="操作人。")
@click.option("--force", is_flag=True, help="截止日期已过仍然创建（仅为补录）。")
@runs_async
async def grant_create(
    settings: Settings,
    engine,
    consumer,
    resource,
    items,
    purposes,
    valid_from,
    valid_until,
    scope,
    mask,
    legal_basis,
    created_by,
    force,
) -> None:
    runtime = _runtime(settings, engine)
    await runtime.refresh()
    row_scope = {name: _csv(values) for name, values in _pairs(scope, "--scope").items()}
    end = _day(valid_until, end=True)
    # A grant over by now never decides anything: almost always a typing error (a bad period is told as such).
    if _day(valid_from) < end <= datetime.now(UTC):
        if not force:
            raise GovshareError("GRANT_ALREADY_EXPIRED", until=_china(end))
        click.echo(_say(settings, "CLI_GRANT_EXPIRED_FORCED", until=_china(end)), err=True)
    async with engine.begin() as conn:
        grant_id = await process.grant_directly(
            conn,
            runtime.catalog,
            now=runtime.clock(),
            department=COORDINATOR_OFFICE,
            actor=created_by,
            consumer=consumer,
            resource=resource,
            items=_csv(items),
            purposes=_csv(purposes),
            valid_from=_day(valid_from),
            valid_until=end,
            row_scope=row_scope,
            masks=_pairs(mask, "--mask"),
            legal_basis=legal_basis,
        )
    await runtime.changed()
    click.echo(grant_id)


@grant.command("revoke", help="撤销共享授权，须说明理由。")
@click.argument("grant_id")
@click.option("--reason", required=True, help="撤销理由。")
@click.option("--by", "revoked_by", default="coordinator", show_default=True, help="操作人。")
@runs_async
async def grant_revoke(settings: Settings, engine, grant_id: str, reason: str, revoked_by: str) -> None:
    runtime = _runtime(settings, engine)
    async with engine.begin() as conn:
        await process.withdraw(
            conn, grant_id, now=runtime.clock(), department=COORDINATOR_OFFICE, actor=revoked_by, reason=reason
        )
    await runtime.changed()
    click.echo(_say(settings, "CLI_GRANT_REVOKED", grant=grant_id))


@grant.command("list", help="列出共享授权：用途、有效期（北京时间，截止时刻不含）、状态、信息项、行范围与脱敏。")
@runs_async
async def grant_list(settings: Settings, engine) -> None:
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        for row in await conn.execute(select(grants).order_by(grants.c.created_at)):
            since, until = row.valid_from, row.valid_until
            state = (
                "CLI_GRANT_STATE_REVOKED"
                if row.revoked_at
                else "CLI_GRANT_STATE_EXPIRED"
                if until <= now
                else "CLI_GRANT_STATE_NOT_YET"
                if since > now
                else "CLI_GRANT_STATE_IN_FORCE"
            )
            line = (
                f"{row.id}  {row.consumer:<8} {row.resource:<24} {','.join(row.purposes):<32} "
                f"{_china(since)} – {_china(until)}  {_say(settings, state)}  {','.join(row.items)}"
            )
            if row.row_scope:  # the console's and explain's convention: item ∈ values; item: mask
                line += "  " + _say(
                    settings,
                    "CLI_GRANT_SCOPE",
                    scope="; ".join(f"{k} ∈ {', '.join(v)}" for k, v in row.row_scope.items()),
                )
            if row.masks:
                line += "  " + _say(
                    settings, "CLI_GRANT_MASKS", masks="; ".join(f"{k}: {v}" for k, v in row.masks.items())
                )
            click.echo(line)


@main.group(help="限制规则：限制某部门使用某资源（第二十条）。")
def restriction() -> None:
    pass


@restriction.command(
    "add",
    help="限制部门使用资源（--resource '*' 表示全部资源），须说明理由。--overdue：因该部门未按更新周期更新其资源"
    "（第二十条）限制其使用全部资源，附上其逾期资源的事实；该部门没有逾期资源时拒绝。",
)
@click.option("--department", required=True, help="被限制的部门编码。")
@click.option("--resource", default=None, help="资源编码，'*' 表示全部资源（不加 --overdue 时必填）。")
@click.option("--overdue", is_flag=True, help="因资源逾期未更新而限制（第二十条）：全部资源，附逾期事实。")
@click.option("--reason", required=True, help="限制理由。")
@click.option("--by", "created_by", default="coordinator", show_default=True, help="操作人。")
@runs_async
async def restriction_add(settings: Settings, engine, department, resource, overdue, reason, created_by) -> None:
    if overdue:
        if resource not in (None, documents.EVERY_RESOURCE):
            raise click.UsageError(_say(settings, "CLI_OVERDUE_EVERY_RESOURCE"))
        restriction_id, _, lagging = await operations.restrict_lagging(
            _runtime(settings, engine), Operator(created_by), department, reason=reason
        )
        click.echo(restriction_id)
        for state in lagging:
            click.echo("  " + _freshness_line(settings, state))
        return
    if resource is None:
        raise click.UsageError(_say(settings, "CLI_RESOURCE_REQUIRED"))
    restriction_id, _ = await operations.put_deny(
        _runtime(settings, engine),
        Operator(created_by),
        {"department": department, "resource": resource, "reason": reason},
        reason=reason,
    )
    click.echo(restriction_id)


@restriction.command("lift", help="解除限制（即删除该禁止规则，产生新的策略版本），须说明理由。")
@click.argument("restriction_id")
@click.option("--reason", required=True, help="解除理由。")
@click.option("--by", "lifted_by", default="coordinator", show_default=True, help="操作人。")
@runs_async
async def restriction_lift(settings: Settings, engine, restriction_id, reason, lifted_by) -> None:
    await operations.lift_restriction(_runtime(settings, engine), Operator(lifted_by), restriction_id, reason=reason)
    click.echo(_say(settings, "CLI_RESTRICTION_LIFTED", restriction=restriction_id))


@restriction.command("list", help="列出生效的限制（禁止规则）。")
@runs_async
async def restriction_list(settings: Settings, engine) -> None:
    _, document = await operations.document_in_force(_runtime(settings, engine))
    for rule in document.deny:
        click.echo(f"{rule.id}  {rule.department:<8} {rule.resource:<24} {rule.reason}")
        for fact in rule.overdue:  # a restriction for lagging (Art 20): the facts it was made on
            click.echo(
                "    "
                + _say(
                    settings,
                    "CLI_RESTRICTION_OVERDUE_FACT",
                    resource=fact.resource,
                    cycle=fact.update_cycle,
                    last_change=fact.last_change,
                    due_by=fact.due_by,
                )
            )


@main.group(help="策略规则：导出、导入、校验、解释、历史与回滚（与策略管理台、管理接口同一套规则）。")
def policy() -> None:
    pass


@policy.command("export", help="把现行（或 --version 指定版本的）策略规则导出为 TOML；导出再导入结果完全相同。")
@click.option("--version", "version", type=int, default=None, help="版本号（默认现行版本）。")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="写入文件（默认标准输出）。")
@runs_async
async def policy_export(settings: Settings, engine, version: int | None, output: Path | None) -> None:
    runtime = _runtime(settings, engine)
    document = (
        (await operations.version(runtime, version)).document
        if version
        else (await operations.document_in_force(runtime))[1]
    )
    text = documents.to_toml(document)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _read_policy_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None


@policy.command("validate", help="校验策略规则文件（格式，以及部门、资源、信息项、用途是否存在），不保存。")
@click.argument("path", type=click.Path(path_type=Path))
@runs_async
async def policy_validate(settings: Settings, engine, path: Path) -> None:
    document = await operations.validate_document(_runtime(settings, engine), _read_policy_file(path))
    click.echo(_say(settings, "POLICY_VALID", rules=len(document.rules), deny=len(document.deny)))


@policy.command("import", help="以文件内容整体替换现行策略规则（校验通过才保存，产生新版本），须说明理由。")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--reason", required=True, help="修改理由。")
@click.option("--by", "author", required=True, help="修改人（安全管理人员账户）。")
@click.option("--based-on", type=int, default=None, help="所依据的版本号：若其后已有他人修改则拒绝。")
@runs_async
async def policy_import(settings: Settings, engine, path: Path, reason: str, author: str, based_on: int | None) -> None:
    version = await operations.import_document(
        _runtime(settings, engine), Operator(author), _read_policy_file(path), reason=reason, based_on=based_on
    )
    click.echo(
        _say(settings, "POLICY_UNCHANGED") if version is None else _say(settings, "POLICY_SAVED", version=version)
    )


@policy.command("explain", help="逐项说明某部门以某用途查询某资源时的决定、理由和依据的规则或授权。")
@click.option("--department", required=True, help="查询部门编码。")
@click.option("--purpose", required=True, help="用途（履职事项编码）。")
@click.option("--resource", required=True, help="资源编码。")
@click.option("--at", "at", default=None, help="时间（ISO 8601，须带时区，默认现在）。")
@runs_async
async def policy_explain(
    settings: Settings, engine, department: str, purpose: str, resource: str, at: str | None
) -> None:
    from policies.explain import describe_cover

    moment = _parse_moment(settings, at)
    result = await operations.explain_access(
        _runtime(settings, engine), department, purpose, resource, moment, settings.language
    )
    if result.refused:
        raise click.ClickException(f"[{result.refused}] {result.refused_message}")
    for item in result.items:
        verdict = "允许" if item.allowed else "拒绝"
        if settings.language == "en":
            verdict = "allow" if item.allowed else "deny"
        mask = f" mask={item.mask}" if item.mask else ""
        click.echo(f"{item.item:<24} {verdict:<5} {item.reason:<24} {item.ref or '-':<10}{mask}  {item.message}")
        if len(item.covers) > 1 or any(c.scope or c.mask for c in item.covers):
            for cover in item.covers:  # every grant that contributes, with its scope and mask
                click.echo(f"{'':<24}   {describe_cover(cover)}")
    for name, values in result.row_scope.items():
        click.echo(f"row_scope {name} = {', '.join(values)}")


def _parse_moment(settings: Settings, at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise click.ClickException(message("POLICY_BAD_TIME", settings.language, value=at)) from None
    if moment.tzinfo is None:
        raise click.ClickException(message("POLICY_TIME_NO_OFFSET", settings.language, value=at))
    return moment


@policy.command("history", help="列出策略规则的所有版本：版本号、时间、修改人、操作、理由。")
@runs_async
async def policy_history(settings: Settings, engine) -> None:
    for v in await operations.history(_runtime(settings, engine)):
        restored = f" <- v{v.restored_version}" if v.restored_version else ""
        click.echo(
            f"v{v.version:<5} {v.at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}  {v.author:<16} {v.action}{restored}  {v.reason}"
        )


@policy.command("diff", help="比较两个版本的策略规则（统一差异格式）。")
@click.argument("before", type=int)
@click.argument("after", type=int)
@runs_async
async def policy_diff(settings: Settings, engine, before: int, after: int) -> None:
    runtime = _runtime(settings, engine)
    a, b = await operations.version(runtime, before), await operations.version(runtime, after)
    click.echo(documents.text_diff(a.document, b.document, f"v{before}", f"v{after}"), nl=False)


@policy.command("rollback", help="回滚到某个早先版本（作为一个新版本保存并记录），须说明理由。")
@click.argument("version", type=int)
@click.option("--reason", required=True, help="回滚理由。")
@click.option("--by", "author", required=True, help="修改人（安全管理人员账户）。")
@runs_async
async def policy_rollback(settings: Settings, engine, version: int, reason: str, author: str) -> None:
    saved = await operations.rollback(_runtime(settings, engine), Operator(author), version, reason=reason)
    click.echo(_say(settings, "POLICY_UNCHANGED") if saved is None else _say(settings, "POLICY_SAVED", version=saved))


@main.group(help="安全管理人员账户：登录策略管理台与管理接口（应用密钥不能登录）。")
def staff() -> None:
    pass


@staff.command("add", help="创建账户。密码从环境变量 GOVSHARE_STAFF_PASSWORD 读取，未设置时交互输入。")
@click.argument("username")
@click.option("--name", "display_name", default="", help="显示名称。")
@click.option(
    "--department",
    default=None,
    help="部门代码：该部门的目录编报人员（catalog_editor），在管理台只能编报、送审、下线本部门的目录条目；"
    "不填为共享主管部门的管理人员。",
)
@runs_async
async def staff_add(settings: Settings, engine, username: str, display_name: str, department: str | None) -> None:
    import os

    from admin import accounts

    if department is not None:
        async with engine.connect() as conn:
            in_force = await catalog_store.current(conn)
        if in_force is None:
            raise GovshareError("CATALOG_NOT_LOADED")
        if department not in in_force.departments:
            raise GovshareError("DEPARTMENT_NOT_FOUND", department=department)
    password = os.environ.get("GOVSHARE_STAFF_PASSWORD") or click.prompt(
        "密码" if settings.language != "en" else "Password", hide_input=True, confirmation_prompt=True
    )
    async with engine.begin() as conn:
        await accounts.create_account(conn, settings, username, password, display_name, department)
    click.echo(_say(settings, "STAFF_CREATED", username=username))


@staff.command("list", help="列出账户及其状态。")
@runs_async
async def staff_list(settings: Settings, engine) -> None:
    from admin import accounts

    async with engine.connect() as conn:
        rows = await accounts.list_accounts(conn)
    for row in rows:
        state = "disabled" if row.disabled_at else ("locked" if row.locked_until else "active")
        role = f"{accounts.CATALOG_EDITOR}:{row.department}" if row.department else accounts.OFFICE
        click.echo(f"{row.username:<20} {row.display_name:<20} {state:<8} {role}")


@staff.command("unlock", help="解除账户锁定。")
@click.argument("username")
@runs_async
async def staff_unlock(settings: Settings, engine, username: str) -> None:
    from admin import accounts

    async with engine.begin() as conn:
        await accounts.unlock(conn, username)
    click.echo(_say(settings, "STAFF_UNLOCKED", username=username))


@staff.command("disable", help="停用账户并结束其所有会话。")
@click.argument("username")
@runs_async
async def staff_disable(settings: Settings, engine, username: str) -> None:
    from admin import accounts

    async with engine.begin() as conn:
        await accounts.disable(conn, username)
    click.echo(_say(settings, "STAFF_DISABLED", username=username))


@main.group(
    help="审计：核验访问记录、办理记录和策略版本的哈希链及其签名检查点和归档，写检查点，归档过期记录，生成签名密钥。"
)
def audit() -> None:
    pass


@audit.command(
    "verify",
    help="逐条核验各记录链，报告第一条被修改、删除、插入或调换顺序的记录；用配置的公钥 audit_verify_public_key"
    "（只用它）核验检查点文件的每个签名和顺序，报告签名不符、缺签名或被删改的检查点，以及晚于最后一个检查点、"
    "尚未覆盖的记录（不算失败）。有记录已归档或给出 --archives 时一并核验归档目录（默认取配置 audit_archive_dir）：每个归档的签名和内容、归档之间的衔接、"
    "平台记载的归档是否齐全，以及在线记录是否接续最后一个归档。发现问题时以非零状态退出。",
)
@click.option(
    "--archives",
    "archive_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="归档目录（默认取配置 audit_archive_dir）：核验其中的归档及其与在线记录的衔接。",
)
@runs_async
async def audit_verify(settings: Settings, engine, archive_dir: Path | None) -> None:
    keys, development_key = verification_keys(settings)
    if development_key is not None:
        click.echo(
            _say(
                settings,
                "CLI_VERIFY_DEV_KEY",
                path=development_key,
                key=", ".join(public_key_text(k) for k in keys.values()),
            ),
            err=True,
        )
    path = Path(settings.expand(settings.audit_checkpoint_file))
    checked = check_checkpoints(path, keys)
    failed = [
        _say(
            settings,
            "CLI_CHECKPOINT_FAULT",
            line=f.line,
            number="?" if f.number is None else f.number,
            fault=f.code,
            text=_say(settings, f.code, detail=f.detail),
        )
        for f in checked.faults
    ]
    # The archives are checked wherever records were archived or a folder is named: a record of archives alone
    # (rows inserted into audit_archives) would otherwise let records be deleted unseen.
    folder = archives.archive_folder(settings, archive_dir)
    async with engine.connect() as conn:
        for chain in CHAINS:
            start, heads = await live_start(conn, chain), checked.heads()
            archived = await archives.recorded(conn, chain) if chain in archives.ARCHIVED_CHAINS else []
            if (archived or archive_dir is not None) and chain in archives.ARCHIVED_CHAINS:
                report = await asyncio.to_thread(archives.verify_folder, folder, chain, keys, archived, heads)
                failed += [
                    _say(
                        settings,
                        "CLI_ARCHIVE_FAULT",
                        file=f.file,
                        fault=f.code,
                        text=_say(settings, f.code, file=f.file, detail=f.detail),
                    )
                    for f in report.faults
                ]
                if report.archives:
                    click.echo(
                        _say(
                            settings,
                            "CLI_ARCHIVES_CHECKED",
                            chain=chain,
                            archives=len(report.archives),
                            records=report.records,
                            last=report.end[0],
                        )
                    )
                if report.pending is not None:
                    click.echo(_say(settings, "CLI_ARCHIVE_PENDING", chain=chain, file=report.pending.path.name))
                start, heads = (report.end[0] + 1, report.end[1]), heads + report.heads()
            count, problem = await verify_chain(conn, chain, heads, start)
            if problem is None:
                click.echo(_say(settings, "CLI_CHAIN_OK", chain=chain, count=count))
                last = start[0] - 1 + count
                covered = max(checked.covered(chain), start[0] - 1)
                if last > covered:
                    click.echo(
                        _say(
                            settings,
                            "CLI_CHAIN_NOT_COVERED",
                            chain=chain,
                            first=covered + 1,
                            last=last,
                            count=last - covered,
                        )
                    )
            else:
                failed.append(_say(settings, "CLI_CHAIN_BROKEN", chain=chain, seq=problem.seq, problem=problem.problem))
                if start[0] > 1 and problem.seq == start[0]:
                    failed.append(
                        _say(
                            settings,
                            "CLI_ARCHIVE_FAULT",
                            file=chain,
                            fault="ARCHIVE_LIVE_DISCONTINUOUS",
                            text=_say(settings, "ARCHIVE_LIVE_DISCONTINUOUS", file=chain, detail=f"seq {start[0]}"),
                        )
                    )
    if checked.valid:
        last_checkpoint = checked.valid[-1]
        click.echo(
            _say(
                settings,
                "CLI_CHECKPOINT_LAST",
                number=last_checkpoint["n"],
                at=last_checkpoint["at"],
                digest=checked.last_digest,
            )
        )
    else:
        click.echo(_say(settings, "CLI_CHECKPOINT_NONE", path=path))
    for line in failed:
        click.echo(line, err=True)
    if failed:
        raise click.ClickException(_say(settings, "CLI_AUDIT_FAILED", count=len(failed)))


@audit.command(
    "archive",
    help="把早于保存期限（配置 audit_retention_days，不少于 180 天）的访问记录和办理记录写入签名的归档文件，"
    "每个归档接续前一个；归档写入、落盘并核验无误后，才在同一事务中登记归档并从在线表删除这些记录。"
    "中断后再次运行会接着完成，不丢记录。逐个归档打印条数。",
)
@click.option(
    "--to",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="归档目录（默认取配置 audit_archive_dir）；生产环境应放在数据库管理员无法改写的存储上。",
)
@click.option(
    "--before",
    default=None,
    help="只归档早于该日期（YYYY-MM-DD，北京时间当日零时）的记录；不得晚于保存期限允许的时刻。",
)
@click.option(
    "--max-records",
    type=click.IntRange(min=1),
    default=archives.MAX_RECORDS,
    show_default=True,
    help="每个归档文件最多包含的记录条数。",
)
@runs_async
async def audit_archive(settings: Settings, engine, folder: Path | None, before: str | None, max_records: int) -> None:
    target = archives.archive_folder(settings, folder, writing=True)
    cutoff = archives.retention_cutoff(settings, _day(before) if before else None)
    click.echo(_say(settings, "CLI_ARCHIVE_START", before=_china(cutoff), folder=target))

    def told(done: archives.Progress) -> None:
        click.echo(
            _say(
                settings,
                "CLI_ARCHIVE_RESUMED" if done.resumed else "CLI_ARCHIVE_WRITTEN",
                chain=done.chain,
                file=done.file,
                records=done.records,
                first=done.first_seq,
                last=done.last_seq,
            )
        )

    done = await archives.archive(engine, settings, target, cutoff, max_records=max_records, told=told)
    for chain in archives.ARCHIVED_CHAINS:
        click.echo(
            _say(
                settings,
                "CLI_ARCHIVE_DONE",
                chain=chain,
                archives=sum(1 for d in done if d.chain == chain),
                records=sum(d.records for d in done if d.chain == chain),
            )
        )


@audit.command(
    "checkpoint",
    help="用签名私钥 audit_signing_key_file 签署各记录链的链头，追加写入检查点文件（服务运行时也会定期写入）。",
)
@runs_async
async def audit_checkpoint(settings: Settings, engine) -> None:
    checkpoints = Checkpointer(settings)
    async with engine.connect() as conn:
        entry = await checkpoints.write(conn)
    heads = ", ".join(f"{chain} {seq}" for chain, (seq, _) in sorted(entry["heads"].items()))
    click.echo(_say(settings, "CLI_CHECKPOINT_WRITTEN", number=entry["n"], path=checkpoints.path, heads=heads))


@audit.command(
    "keygen",
    help="生成新的 Ed25519 检查点签名密钥对：私钥写入文件（已存在则拒绝覆盖），公钥打印到标准输出，"
    "供配置为 audit_verify_public_key。",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="私钥文件（默认取配置 audit_signing_key_file）；应放在平台数据库和 var/ 之外。",
)
def audit_keygen(output: Path | None) -> None:
    settings = _settings()
    path = output or Path(settings.expand(settings.audit_signing_key_file))
    try:
        key = generate_key(path)
    except GovshareError as exc:
        _fail(settings, exc)
    click.echo(_say(settings, "CLI_KEYGEN_WRITTEN", path=path), err=True)
    click.echo(public_key_text(key.public_key()))


@audit.command(
    "subject",
    help="谁查看了我的数据：按公民身份号码或统一社会信用代码列出涉及该自然人或法人的全部数据访问，最新的在前；"
    "本次查询也记入访问记录（以协调机构办公室的名义，记下经办人）。",
)
@click.option("--id-number", default=None, help="自然人的公民身份号码（18 位，校验码须正确）。")
@click.option("--credit-code", default=None, help="法人的统一社会信用代码（18 位，校验码须正确）。")
@click.option("--by", "operator", required=True, help="经办人（记入本次查询的访问记录）。")
@click.option("--first", default=50, show_default=True, type=click.IntRange(1, 10_000), help="最多列出的条数。")
@runs_async
async def audit_subject(
    settings: Settings, engine, id_number: str | None, credit_code: str | None, operator: str, first: int
) -> None:
    argument, value = subjects.subject_of(id_number, credit_code)
    key = SubjectKey(
        platform_secret(Path(settings.expand(settings.subject_key_file)), create=False, name="subject key")
    )
    digest = key.digest(value)
    found = await subjects.read(engine, digest, first, settings=settings)
    # Recorded before anything is shown, as every lookup of a subject is.
    writer = AuditWriter(engine)
    try:
        await writer.write(
            [
                AccessRecord(
                    at=datetime.now(UTC),
                    request_id=str(uuid.uuid4()),
                    trace_id="0" * 32,
                    department=COORDINATOR_OFFICE,
                    application="govshare audit subject",
                    key_id="cli",
                    operator=operator,
                    purpose=None,
                    resource=subjects.SUBJECT_INDEX,
                    operation=subjects.OPERATION,
                    items_returned=[argument],
                    row_count=len(found.accesses),
                    subjects=[(argument, digest)],
                )
            ]
        )
    finally:
        await writer.close()
    if not found.accesses:
        click.echo(_say(settings, "CLI_SUBJECT_NONE"))
    for access in found.accesses:
        r = access.row
        click.echo(
            _say(
                settings,
                "CLI_SUBJECT_ACCESS",
                at=r.at.astimezone(CHINA).isoformat(timespec="seconds"),
                department=r.department,
                application=r.application,
                operator=r.operator or "-",
                purpose=r.purpose or "-",
                resource=r.resource,
                operation=r.operation,
                items=",".join(r.items_returned) or "-",
                masked=",".join(r.items_masked) or "-",
                grants=",".join(r.grants_used) or "-",
                as_items=",".join(access.items),
            )
        )
    if found.has_next_page:
        click.echo(_say(settings, "CLI_SUBJECT_MORE", first=first))


@main.group(
    help="报告：提供部门资源的使用情况（第二十四条）与各部门共享工作评价（第二十三、二十五、二十七条），导出为 CSV 或 Excel。"
)
def report() -> None:
    pass


@report.command(
    "evaluation",
    help="各部门共享工作评价与排名（第二十三、二十五、二十七条），由平台记录计算，权重为配置（evaluation_weights_file）。"
    "默认评价上一个完整月份；不给 --format 时列出排名，给出时导出到 --out 文件。",
)
@click.option("--from", "start", default="", help="评价期间首日（YYYY-MM-DD）。")
@click.option("--to", "end", default="", help="评价期间末日（YYYY-MM-DD，含当日）。")
@click.option("--format", "form", type=click.Choice(["csv", "xlsx"]), default=None, help="导出格式：csv 或 xlsx。")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="导出文件（默认为当前目录下的 evaluation-起始日-结束日.csv|xlsx）。",
)
@runs_async
async def report_evaluation(settings: Settings, engine, start: str, end: str, form: str | None, out: Path | None):
    now = datetime.now(UTC)
    first, last = oversight_evaluation.default_period(now.astimezone(CHINA).date())
    first = oversight_evaluation.parse_day(start, "--from") if start else first
    last = oversight_evaluation.parse_day(end, "--to") if end else last
    weights = oversight_evaluation.load_weights(settings.expand(settings.evaluation_weights_file))
    found = await oversight_evaluation.run(engine, settings, start=first, end=last, now=now, weights=weights)
    lang = settings.language
    header, rows = oversight_evaluation.table(found, lang)
    if form is None:
        for card in found.cards:
            click.echo(f"{card.rank:>3}  {card.score:>10}  {card.department:<10} {card.name}")
        return
    if form == "csv":
        body = exports.csv_bytes(header, rows)
    else:
        body = exports.xlsx_bytes(
            [
                (label("evaluation_heading", lang), header, rows),
                (label("evaluation_weights", lang), *oversight_evaluation.weights_table(found, lang)),
            ]
        )
    target = out or Path(f"evaluation-{first.isoformat()}-{last.isoformat()}.{form}")
    target.write_bytes(body)
    click.echo(_say(settings, "CLI_EVALUATION_WRITTEN", path=str(target), departments=len(found.cards)))


@report.command(
    "usage",
    help="某提供部门资源的使用情况报告（第二十四条）：访问次数、返回行数与数据项、拒绝与脱敏，按资源、使用部门、用途、"
    "共享授权、时间段与原因代码统计，及各授权按月的使用效果反馈（feedback 表；与管理台“使用情况”页面同一数据）。"
    "CSV 为一张表（--table，默认 resources，带 BOM 供 Excel 读取中文）；xlsx 每张表一个工作表。",
)
@click.option("--department", required=True, help="提供部门代码。")
@click.option("--from", "first", default=None, help="起始日期 YYYY-MM-DD（北京时间，含；默认截止日前 29 天）。")
@click.option("--to", "last", default=None, help="截止日期 YYYY-MM-DD（北京时间，含；默认今天）。")
@click.option("--granularity", type=click.Choice(usage_figures.GRANULARITIES), default="day", help="趋势表的时间粒度。")
@click.option("--table", "table_name", type=click.Choice(reports.TABLES), default=None, help="只导出这张表。")
@click.option("--format", "fmt", type=click.Choice(("csv", "xlsx")), default="csv", help="导出格式（默认 csv）。")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="写入的文件（csv 默认写到标准输出）。"
)
@runs_async
async def report_usage(
    settings: Settings,
    engine,
    department: str,
    first: str | None,
    last: str | None,
    granularity: str,
    table_name: str | None,
    fmt: str,
    out: Path | None,
) -> None:
    catalog = await _catalog_in_force(engine)
    if department not in catalog.departments:
        raise GovshareError("USAGE_PROVIDER_UNKNOWN", department=department)
    if fmt == "xlsx" and out is None:
        raise GovshareError("REPORT_OUT_REQUIRED")
    today = datetime.now(CHINA).date()
    asked = reports.Asked(
        department,
        usage_figures.visible_resources(catalog, department),
        "",
        usage_figures.period(first, last, granularity, today=today),
    )
    names = [table_name] if table_name else (["resources"] if fmt == "csv" else None)
    shown = await reports.tables(engine, settings, catalog, asked, settings.language, names)
    if fmt == "csv":
        body = exports.csv_bytes(shown[0].header, shown[0].rows)
    else:
        body = exports.xlsx_bytes([(t.title, t.header, t.rows) for t in shown])
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    out.write_bytes(body)
    click.echo(_say(settings, "CLI_REPORT_WRITTEN", path=out, tables=len(shown)), err=True)


@main.group(help="工作日历：加载某年的法定节假日和调休安排（用于计算答复期限）。")
def calendar() -> None:
    pass


@calendar.command(
    "load", help="加载某年的节假日安排文件（TOML：year、holidays、workdays、source），替换该年已有的安排。"
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--by", "loaded_by", default="administrator", show_default=True, help="操作人。")
@runs_async
async def calendar_load(settings: Settings, engine, path: Path, loaded_by: str) -> None:
    try:
        schedule = load_schedule_file(path)
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None
    async with engine.begin() as conn:
        await store_schedule(conn, schedule, loaded_by=loaded_by)
        # Deadlines counted on weekdays only for lack of this schedule are counted again.
        calendar_now = await load_calendar(conn)
        await recompute_deadlines(conn, calendar_now, settings)
        await recompute_report_deadlines(conn, calendar_now, settings)  # data-error reports' too
    await _runtime(settings, engine).changed()  # deadlines counted again are the policies' (deemed approvals)
    click.echo(
        _say(
            settings,
            "CLI_CALENDAR_LOADED",
            year=schedule.year,
            holidays=len(schedule.holidays),
            workdays=len(schedule.workdays),
        )
    )


@calendar.command("list", help="列出已加载的年度安排。")
@runs_async
async def calendar_list(settings: Settings, engine) -> None:
    async with engine.connect() as conn:
        work_calendar = await load_calendar(conn)
    for year, schedule in sorted(work_calendar.schedules.items()):
        click.echo(
            _say(
                settings,
                "CLI_CALENDAR_ROW",
                year=year,
                holidays=len(schedule.holidays),
                workdays=len(schedule.workdays),
                source=schedule.source,
            )
        )


@main.group(help="平台数据库的结构版本（迁移）：升级、查看当前版本与版本历史。")
def db() -> None:
    pass


def _platform_command(body):
    """A db command: the settings and the platform database, without the revision check of runs_async."""

    @functools.wraps(body)
    def wrapper(*args, **kwargs):
        settings = _settings()

        async def run():
            engine = make_engine(settings.platform_url)
            try:
                return await body(settings, engine, *args, **kwargs)
            finally:
                await engine.dispose()

        try:
            return asyncio.run(run())
        except GovshareError as exc:
            _fail(settings, exc)

    return wrapper


@db.command(
    "upgrade",
    help="把平台数据库升级到指定的结构版本（默认为最新版本）。参数 REV 可指定版本（默认 head）："
    "空数据库直接建到最新版本；由引入迁移前的版本建成的数据库，核对表结构与基线一致后接管；然后逐个执行迁移并打印每一步。",
)
@click.argument("revision", default="head")
@_platform_command
async def db_upgrade(settings: Settings, engine, revision: str) -> None:
    state = await migrations.upgrade(
        engine, revision, say=lambda code, params: click.echo(_say(settings, code, **params))
    )
    click.echo(
        _say(
            settings,
            "DB_AT_REVISION",
            revision=",".join(state.current),
            note=_say(settings, "DB_NOTE_HEAD") if state.at_head else "",
        )
    )


@db.command("current", help="显示平台数据库当前的结构版本，以及它是否就是本程序的最新版本（不改动数据库）。")
@_platform_command
async def db_current(settings: Settings, engine) -> None:
    state = await migrations.status(engine)
    if state.empty:
        note = _say(settings, "DB_NOTE_EMPTY")
    elif not state.current:
        note = _say(settings, "DB_NOTE_UNVERSIONED")
    elif state.at_head:
        note = _say(settings, "DB_NOTE_HEAD")
    else:
        note = _say(settings, "DB_NOTE_BEHIND", head=migrations.head())
    click.echo(_say(settings, "DB_AT_REVISION", revision=",".join(state.current) or "-", note=note))


@db.command("history", help="列出本程序的全部结构版本，从基线到最新（head）。")
def db_history() -> None:
    head = migrations.head()
    for revision, before, doc in migrations.history():
        click.echo(f"{before or 'base'} -> {revision}{' (head)' if revision == head else ''}  {doc}")


# Each command's and option's help in English (GOVSHARE_LANGUAGE=en), by command path and option.
ENGLISH_HELP = {
    "report": "Reports: the usage of a provider's resources (Art 24) and the evaluation of departments (Art 23, 25, "
    "27), exported as CSV or Excel.",
    "report evaluation": "Every department's evaluation and ranking (Art 23, 25, 27), counted from the platform's "
    "records, weighted by evaluation_weights_file. The last full month by default; without --format the ranking is "
    "listed, with it the table is written to --out.",
    "report evaluation --from": "The period's first day (YYYY-MM-DD).",
    "report evaluation --to": "The period's last day (YYYY-MM-DD, included).",
    "report evaluation --format": "Export format: csv or xlsx.",
    "report evaluation --out": "The file to write (default: evaluation-FROM-TO.csv|xlsx in the current folder).",
    "": "govshare: the online-query service of the government data-sharing platform.",
    "serve": "Start the query service (default http://127.0.0.1:8000, GraphiQL at /graphql).",
    "serve --host": "Address to listen on (default: the host setting).",
    "serve --port": "Port to listen on (default: the port setting).",
    "serve --workers": "Worker processes (default: the workers setting, 1): they share the port and the platform "
    "database, and one that exits is restarted; in production, one per CPU core.",
    "demo": "Build the demo world under ./var/: department databases, the demo catalog, application keys (written to "
    "var/demo-keys.json), grants, rules and restrictions. Does nothing if it is already built.",
    "demo --force": "Delete the existing demo data (platform database and access records included) and build it again.",
    "demo --engine": "Database engine of the department databases (postgres and mariadb use the servers the "
    "demo_postgres_url and demo_mariadb_url settings name).",
    "demo --engine-for": "Another engine for one department, like --engine-for police=postgres; repeatable.",
    "catalog": "The resource catalog: load, check and export; departments' submissions, review, publishing, retiring, versions.",
    "catalog load": "Validate and load catalog files directly (one .toml file, its folder or an .xlsx workbook), without review (the "
    "platform's operator). Only the entries of the departments the files name are replaced; every other "
    "department's stay as they are. Any problem refuses it as a whole and the catalog in force stays unchanged.",
    "catalog load --by": "Operator.",
    "catalog load --reason": "Why (recorded with the catalog version and the process record).",
    "catalog submit": "A department submits its own catalog entries (one .toml file of one department): new or changed "
    "resources are a draft, then under review by the coordinating authority; the sources are checked on submission "
    "and the findings are stored with it, per field.",
    "catalog submit --reason": "Why the entries are submitted.",
    "catalog submit --by": "Operator.",
    "catalog submit --draft": "Keep it as a draft; send it for review later with catalog send.",
    "catalog send": "Send a draft submission for review (the sources are checked again).",
    "catalog send --by": "Operator.",
    "catalog submissions": "List catalog submissions (state, resources changed, reasons, the review's answer and the "
    "source check's findings per field).",
    "catalog submissions --department": "Only this department's submissions.",
    "catalog submissions --status": "Only submissions in this state.",
    "catalog approve": "The coordinating authority approves and publishes a submission (the sources are checked again "
    "first; an error refuses it).",
    "catalog approve --reason": "The review's opinion.",
    "catalog approve --by": "Operator (not the one who submitted it).",
    "catalog return": "The coordinating authority returns a submission, with a reason.",
    "catalog return --reason": "Why it is returned.",
    "catalog return --by": "Operator.",
    "catalog retire": "Retire a published resource, with a reason: it stays in the catalog, retired, and its grants stop.",
    "catalog retire --reason": "Why it is retired.",
    "catalog retire --by": "Operator.",
    "catalog history": "Every catalog version: number, time, operator, kind of change, department, reason (or only the "
    "versions in which one resource changed).",
    "catalog history --resource": "Only the versions in which this resource changed.",
    "catalog diff": "Compare two catalog versions field by field (A the older, B the newer).",
    "catalog export": "Export the catalog as an .xlsx workbook for departments to exchange (a catalog sheet with one "
    "row per data item, and sheets of departments, purposes and links); the catalog in force unless --from names "
    "catalog files. catalog load and catalog check read such a workbook.",
    "catalog export --format": "File format.",
    "catalog export --output": "The file to write.",
    "catalog export --department": "Only this department (its purposes, resources and links).",
    "catalog export --from": "Export this catalog file or folder instead of the catalog in force.",
    "catalog overdue": "List the overdue resources (by the update cycles the catalog publishes, Art 16, 20): resource, "
    "provider, cycle, the source's last change and when the next was due, from what the platform recorded of each "
    "source; --check reads every source first and records it.",
    "catalog overdue --department": "Only this provider's resources.",
    "catalog overdue --check": "Read every source's last change first and record it (servers do it every "
    "freshness_check_seconds).",
    "catalog overdue --all": "Every published resource's freshness, not only the overdue ones.",
    "catalog check": "Check a catalog: validate the file (given PATH) or the catalog in force, and compare tables and "
    "columns with every source. Changes nothing; exits non-zero on a problem.",
    "key": "Application keys: create, revoke, list; register the GraphQL documents an application may send (trusted "
    "documents).",
    "key create --trusted-documents-only": "The key may send only the GraphQL documents registered for its application "
    "(govshare key documents add).",
    "key documents": "Trusted documents: the GraphQL documents an application registered. A restricted key (key create "
    "--trusted-documents-only, key documents only, or the setting trusted_documents_required) may send only these, as "
    "text or by id (sha256:…). Documents belong to the key's application (department and application name), so a "
    "replacement key keeps them. Every registration, withdrawal and restriction is a process record.",
    "key documents add": "Register .graphql files (one document each, possibly several operations) for the key's "
    "application, each checked first against the schema of the catalog in force; if one is invalid, none is "
    "registered. Prints each document's id.",
    "key documents add --by": "Who registers them.",
    "key documents add --reason": "Why (optional).",
    "key documents list": "List the documents registered for the key's application (id, file name, operations, who "
    "registered it and when).",
    "key documents remove": "Withdraw a registered document (by id), with a reason; no key of the application may send "
    "it afterwards.",
    "key documents remove --reason": "Why it is withdrawn.",
    "key documents remove --by": "Who withdraws it.",
    "key documents only": "Restrict the key to registered documents; --off lifts the restriction.",
    "key documents only --off": "Lift the restriction.",
    "key documents only --by": "Operator.",
    "key documents only --reason": "Why (optional).",
    "schema": "The GraphQL schema: print the schema the catalog in force makes.",
    "schema sdl": "Print the whole GraphQL schema (SDL) the catalog in force makes (its published resources whose "
    "sources conform). With --federation, the Apollo Federation v2 subgraph SDL (@link, and @key on every resource "
    "type) for composing a supergraph offline with @apollo/composition; it lists every resource, for the gateway's "
    "operators only.",
    "schema sdl --federation": "Print the Federation v2 subgraph SDL (@link, @key, _service, _entities).",
    "schema sdl --output": "Write to this file instead of standard output.",
    "key create": "Create a key for a department's application. The key is shown this once; the platform keeps its "
    "hash only.",
    "key create --department": "Department code, like market.",
    "key create --app": "Application name.",
    "key create --role": "Role (repeatable): applicant applies, reviewer answers applications for the department's "
    "resources, coordinator coordinates, auditor reads the audit. Default applicant and reviewer.",
    "key revoke": "Revoke a key (by key id).",
    "key list": "List the keys (never the keys themselves).",
    "grant": "Share grants created or revoked directly by the coordinating authority. Departments apply, providers "
    "answer and the coordinator decides over the query service's GraphQL API (applyForShare, "
    "approveApplication, ...).",
    "grant create": "Create a share grant. For example: govshare grant create --consumer hrss --resource police.person "
    "--items idNumber,name --purposes hrss.insurance-enrolment --from 2026-01-01 --until 2026-12-31 "
    "--scope countyCode=371311 --mask idNumber=id_number",
    "grant create --consumer": "Consuming department code.",
    "grant create --resource": "Resource code, like police.person.",
    "grant create --items": "Data items, comma-separated.",
    "grant create --purposes": "Approved purpose codes, comma-separated.",
    "grant create --from": "Start date YYYY-MM-DD (from midnight Beijing time).",
    "grant create --until": "End date YYYY-MM-DD (inclusive).",
    "grant create --scope": "Row scope: item=value1,value2; repeatable.",
    "grant create --mask": "Mask: item=kind (id_number, credit_code, phone, name, full); repeatable.",
    "grant create --legal-basis": "The legal basis of a sharing by law (required for a not-shared resource).",
    "grant create --by": "Operator.",
    "grant create --force": "Create it even though its end date has passed (back-filling only).",
    "grant revoke": "Revoke a share grant, with a reason.",
    "grant revoke --reason": "Why it is revoked.",
    "grant revoke --by": "Operator.",
    "grant list": "List the share grants: purposes, period (Beijing time, end excluded), state, items, row scope and "
    "masks.",
    "restriction": "Restrictions: stop a department using a resource (Art 20).",
    "restriction add": "Restrict a department from a resource (--resource '*' for every resource), with a reason. "
    "--overdue: restrict it from every resource for not updating its own resources in their cycles (Art 20), the facts "
    "of its overdue resources attached; refused when it has none.",
    "restriction add --department": "Code of the restricted department.",
    "restriction add --resource": "Resource code, '*' for every resource (required without --overdue).",
    "restriction add --overdue": "Restrict for overdue resources (Art 20): every resource, the overdue facts attached.",
    "restriction add --reason": "Why it is restricted.",
    "restriction add --by": "Operator.",
    "restriction lift": "Lift a restriction (removes that deny rule: a new policy version), with a reason.",
    "restriction lift --reason": "Why it is lifted.",
    "restriction lift --by": "Operator.",
    "restriction list": "List the restrictions (deny rules) in force.",
    "policy": "The policy rules: export, import, validate, explain, history and rollback (the same rules as the "
    "policy console and the admin API).",
    "policy export": "Export the rules in force (or the rules-document version --version) as TOML; exporting and "
    "importing again gives the same rules.",
    "policy export --version": "Rules-document version (default: the one in force).",
    "policy export --output": "File to write (default: standard output).",
    "policy validate": "Validate a rules file (its form, and that its departments, resources, items and purposes "
    "exist) without saving it.",
    "policy import": "Replace the rules in force by the file's (saved only if valid, as a new rules-document "
    "version), with a reason.",
    "policy import --reason": "Why the rules change.",
    "policy import --by": "Author (a security staff account).",
    "policy import --based-on": "The rules-document version this change is based on: refused if someone changed "
    "the rules since.",
    "policy explain": "Tell, item by item, the decision, its reason and the rule or grant behind it when a department "
    "reads a resource for a purpose.",
    "policy explain --department": "Code of the reading department.",
    "policy explain --purpose": "Purpose (business-matter code).",
    "policy explain --resource": "Resource code.",
    "policy explain --at": "Moment (ISO 8601 with a time zone; default now).",
    "policy history": "List every rules-document version: number, time, author, action, reason.",
    "policy diff": "Compare two rules-document versions (unified diff).",
    "policy rollback": "Roll back to an earlier rules-document version (saved and recorded as a new one), with a "
    "reason.",
    "policy rollback --reason": "Why the rules are rolled back.",
    "policy rollback --by": "Author (a security staff account).",
    "staff": "Security staff accounts: they sign in to the policy console and the admin API (application keys cannot).",
    "staff add": "Create an account. The password is read from GOVSHARE_STAFF_PASSWORD, or asked for.",
    "staff add --name": "Display name.",
    "staff add --department": "Department code: the account is that department's catalog staff (catalog_editor), who "
    "in the console may only submit, send and retire that department's catalog entries; without it, the coordinating "
    "authority's office.",
    "staff list": "List the accounts and their state.",
    "staff unlock": "Unlock an account.",
    "staff disable": "Disable an account and end all its sessions.",
    "audit": "Audit: verify the hash chains of access records, process records and policy versions, their signed "
    "checkpoints and archives, write a checkpoint, archive records past retention, generate a signing key.",
    "report usage": "A provider's usage report (Art 24): accesses, rows and item values returned, refusals and masks, "
    "by resource, consumer department, purpose, grant, period and code, and each grant's feedback per month (the "
    "feedback table; the figures of the console's usage page). "
    "CSV is one table (--table, default resources; with a BOM so Excel reads Chinese); xlsx one sheet a table.",
    "report usage --department": "The providing department's code.",
    "report usage --from": "First day YYYY-MM-DD (China time, included; default 29 days before the last).",
    "report usage --to": "Last day YYYY-MM-DD (China time, included; default today).",
    "report usage --granularity": "The trend table's buckets.",
    "report usage --table": "Export this table only.",
    "report usage --format": "Export format (default csv).",
    "report usage --out": "File to write (csv goes to standard output without it).",
    "audit verify": "Verify each chain record by record, reporting the first record changed, deleted, inserted or "
    "reordered; verify every signature and the order of the checkpoint file with the configured "
    "public key audit_verify_public_key (only that one), reporting bad or missing signatures, changed "
    "or deleted checkpoints, and records newer than the last checkpoint (not a failure). Where records were archived, "
    "or with --archives, the archive folder too (default: the audit_archive_dir setting): each archive's signature and content, the links between archives, that every archive the "
    "platform recorded is there, and that the live records continue the last one. Exits non-zero on a finding.",
    "audit verify --archives": "Archive folder (default: the audit_archive_dir setting): verify its archives and how "
    "the live records continue them.",
    "audit archive": "Move access and process records older than the retention period (the audit_retention_days "
    "setting, at least 180 days) into signed archive files, each linked to the one before; only once an archive is "
    "written, fsynced and verified is it recorded and its records removed from the live tables, in one transaction. "
    "A run interrupted is completed by the next one, losing nothing. Prints the records of each archive.",
    "audit archive --to": "Archive folder (default: the audit_archive_dir setting); in production on storage the "
    "database administrator cannot rewrite.",
    "audit archive --before": "Archive only records before this date (YYYY-MM-DD, from midnight Beijing time); no "
    "later than the retention period allows.",
    "audit archive --max-records": "Records one archive file holds at most.",
    "audit checkpoint": "Sign the chains' heads with the signing key audit_signing_key_file and append them to the "
    "checkpoint file (a running server also writes them from time to time).",
    "audit keygen": "Generate a new Ed25519 checkpoint signing key pair: the private key to a file (never over an "
    "existing one), the public key to standard output, to configure as audit_verify_public_key.",
    "audit subject": "Who looked at my data: every access to records about the person or enterprise with this ID "
    "number or credit code, newest first; the lookup itself is recorded (the coordinator's office, officer --by).",
    "audit subject --id-number": "A person's citizen ID number (18 characters, check character verified).",
    "audit subject --credit-code": "An enterprise's unified social credit code (18 characters, check character "
    "verified).",
    "audit subject --by": "The officer asking (recorded in the lookup's access record).",
    "audit subject --first": "At most this many accesses.",
    "audit keygen --output": "Private key file (default: the audit_signing_key_file setting); keep it outside the "
    "platform database and var/.",
    "calendar": "Working calendar: load a year's public holidays and make-up working days (for answer deadlines).",
    "calendar load": "Load a year's holiday schedule file (TOML: year, holidays, workdays, source), replacing that "
    "year's schedule.",
    "calendar load --by": "Operator.",
    "calendar list": "List the loaded years.",
    "db": "The platform database's schema revisions (migrations): upgrade, show the current one and the history.",
    "db upgrade": "Upgrade the platform database to REV (default: the latest, head): an empty database is created at "
    "head directly; one made before migrations is adopted once its tables are checked to match the "
    "baseline; then each migration is applied and printed.",
    "db current": "Show the platform database's current schema revision and whether it is this program's head "
    "(changes nothing).",
    "db history": "List this program's schema revisions, from the baseline to the head.",
}


if __name__ == "__main__":
    sys.exit(main())
