"""Signed audit checkpoints, attacked as an insider with the platform database and the var/ folder would: records
deleted or edited after a checkpoint with the checkpoint file rewritten to match, a checkpoint line removed,
the file re-signed with a key of one's own, the last checkpoints cut off while the server runs; and the
production server refusing a checkpoint file or signing key under var/.

The attacker never has the signing key: it is outside var/ (where production keeps it), and `govshare audit
verify` is given the public half in its configuration, as production requires. The attacks only use what the
attacker has (sqlite3 on the database, text edits of the file) and the `govshare` command.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.chain import record_hash
from tests.conftest import connect, copy_var, make_settings
from tests.test_cli import _Server, answer, demo_keys, environment, govshare_command, govshare_in_process, serving

TIMEOUT = 60
QUERY = "{ enterpriseList(first: 1) { items { name } } }"
PURPOSE = "land.property-registration"


def _new_key(path: Path) -> str:
    """A key pair made the way `govshare audit keygen` makes one; the public half as configured."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + base64.b64encode(raw).decode()


class Platform:
    """A copy of the demo world whose checkpoints are signed with a key kept outside var/."""

    def __init__(self, demo: Path, folder: Path) -> None:
        copy_var(demo / "var", folder / "var")
        self.folder, self.var = folder, folder / "var"
        self.checkpoints = self.var / "audit-checkpoints.jsonl"  # the default place: within the attacker's reach
        key_file = folder / "keys" / "checkpoint-signing.key"  # outside var/: the attacker does not have it
        self.public_key = _new_key(key_file)
        self.env = environment(folder) | {
            "GOVSHARE_AUDIT_SIGNING_KEY_FILE": str(key_file),
            "GOVSHARE_AUDIT_VERIFY_PUBLIC_KEY": self.public_key,
        }

    def govshare(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """`govshare ...` run in this process (the keygen test runs the real command)."""
        return govshare_in_process(self.folder, *args, env=self.env | env)

    def govshare_subprocess(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [govshare_command(), *args],
            cwd=self.folder,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def checkpoint(self) -> None:
        written = self.govshare("audit", "checkpoint")
        assert written.returncode == 0, written.stderr

    def verify(self, **env: str) -> subprocess.CompletedProcess:
        return self.govshare("audit", "verify", **env)

    async def answer_some(self, n: int) -> None:
        """``n`` access records, each from a real answered query."""
        async with serving(self.folder) as client:
            for _ in range(n):
                result = await answer(client, QUERY, demo_keys(self.folder)["land"], PURPOSE)
                assert result["data"]["enterpriseList"]["items"]

    def tamper(self, *statements: str, params: tuple = ()) -> None:
        """What a database administrator can do: drop the append-only triggers, then edit."""
        with connect(self.var / "platform.db") as conn:
            for trigger in (
                "access_records_no_update",
                "access_records_no_delete",
                "access_subjects_no_update",
                "access_subjects_no_delete",
            ):
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            for statement in statements:
                conn.execute(statement, params if "?" in statement else ())
            conn.commit()

    def access(self, seq: int) -> dict:
        with connect(self.var / "platform.db") as conn:
            conn.row_factory = sqlite3.Row
            return dict(conn.execute("SELECT * FROM access_records WHERE seq = ?", (seq,)).fetchone())

    def truncate_access(self, keep: int) -> str:
        """Delete the access records after ``keep`` (and their data subjects) and move the chain's head back: the
        chain is whole again."""
        head = self.access(keep)["hash"]
        self.tamper(
            f"DELETE FROM access_subjects WHERE record_seq > {keep}",
            f"DELETE FROM access_records WHERE seq > {keep}",
            "UPDATE chain_heads SET seq = ?, hash = ? WHERE chain = 'access'",
            params=(keep, head),
        )
        return head

    def lines(self) -> list[str]:
        return self.checkpoints.read_text(encoding="utf-8").splitlines()

    def rewrite_heads(
        self, seq: int, digest: str, *, drop_signature: bool = False, sign_with: Ed25519PrivateKey | None = None
    ) -> None:
        """Rewrite every checkpoint line so that its access head says (seq, digest), whatever the format."""
        rewritten = []
        for line in self.lines():
            entry = json.loads(line)
            if "heads" in entry:
                if entry["heads"]["access"][0] > seq:
                    entry["heads"]["access"] = [seq, digest]
            elif entry.get("chain") == "access" and entry["seq"] > seq:  # the unsigned lines of before
                entry.update(seq=seq, hash=digest)
            if drop_signature:
                entry.pop("sig", None)
            if sign_with is not None:
                entry = _resign(entry, sign_with)
            rewritten.append(json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
        # Links between the lines recomputed too, as an attacker who read audit/checkpoints.py would.
        if sign_with is not None:
            rewritten = _relink(rewritten, sign_with)
        self.checkpoints.write_text("".join(line + "\n" for line in rewritten), encoding="utf-8")


def _public_id(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _resign(entry: dict, key: Ed25519PrivateKey) -> dict:
    body = {k: v for k, v in entry.items() if k != "sig"} | {"key": _public_id(key)}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return body | {"sig": base64.b64encode(key.sign(b"govshare audit checkpoint v1\n" + canonical.encode())).decode()}


def _relink(lines: list[str], key: Ed25519PrivateKey) -> list[str]:
    prev, out = "0" * 64, []
    for line in lines:
        entry = json.loads(line)
        if "heads" in entry:
            entry = _resign(entry | {"prev": prev}, key)
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        prev = hashlib.sha256(line.encode()).hexdigest()
        out.append(line)
    return out


@pytest.fixture
def platform(demo_folder, tmp_path) -> Platform:
    return Platform(demo_folder, tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# What verify says of an untouched trail


async def test_an_untouched_trail_verifies_and_a_newer_tail_is_not_yet_covered(platform):
    await platform.answer_some(6)
    platform.checkpoint()
    await platform.answer_some(2)
    run = platform.verify()
    assert run.returncode == 0, run.stderr
    assert "access 记录链完整：8 条。" in run.stdout
    assert "access 记录链第 7–8 条（2 条）晚于最后一个有效检查点，尚未被检查点覆盖。" in run.stdout
    assert "最后一个有效检查点：#1" in run.stdout
    assert "process 记录链完整：5 条。" in run.stdout and "process 记录链第" not in run.stdout  # covered
    english = platform.verify(GOVSHARE_LANGUAGE="en")
    assert english.returncode == 0, english.stderr
    assert "access records 7-8 (2) are newer than the last valid checkpoint: not yet covered." in english.stdout


# ---------------------------------------------------------------------------------------------------------------
# Records deleted or edited after a checkpoint, and the checkpoint file rewritten to match (no private key)


@pytest.mark.parametrize(
    "signature, code", [("kept", "CHECKPOINT_SIGNATURE_INVALID"), ("removed", "CHECKPOINT_UNSIGNED")]
)
async def test_records_deleted_after_a_checkpoint_with_the_file_rewritten_to_match_fail(platform, signature, code):
    await platform.answer_some(6)
    platform.checkpoint()
    head = platform.truncate_access(keep=4)
    platform.rewrite_heads(4, head, drop_signature=signature == "removed")
    run = platform.verify()
    assert run.returncode == 1, run.stdout
    assert f"检查点文件第 1 行（检查点 #1）未通过核验：[{code}]" in run.stderr
    assert "access 记录链完整：4 条。" in run.stdout  # the chain alone looks whole: only the signature tells
    assert "最后一个有效检查点：#" not in run.stdout


async def test_a_record_edited_and_relinked_after_a_checkpoint_with_the_file_rewritten_fails(platform):
    await platform.answer_some(6)
    platform.checkpoint()
    # Record 3 now says market read it, and records 3-6 and the head are relinked so the chain holds alone
    # (with the project's own table definition and record_hash, as an insider with the source would).
    from sqlalchemy import create_engine, select, update

    from audit.chain import chain_heads
    from audit.tables import access_records

    platform.tamper()  # the triggers dropped
    engine = create_engine(f"sqlite:///{platform.var / 'platform.db'}")
    with engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(access_records).order_by(access_records.c.seq)).mappings()]
        prev = rows[1]["hash"]
        for row in rows[2:]:
            if row["seq"] == 3:
                row["department"] = "market"
            row["prev_hash"], row["hash"] = prev, record_hash(prev, row["seq"], row)
            conn.execute(
                update(access_records)
                .where(access_records.c.id == row["id"])
                .values(department=row["department"], prev_hash=row["prev_hash"], hash=row["hash"])
            )
            prev = row["hash"]
        conn.execute(update(chain_heads).where(chain_heads.c.chain == "access").values(hash=prev))
    engine.dispose()
    lines = []
    for line in platform.lines():  # the checkpoint's access head made to match
        entry = json.loads(line)
        if "heads" in entry:
            entry["heads"]["access"] = [6, prev]
        elif entry.get("chain") == "access":
            entry.update(seq=6, hash=prev)
        lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":")))
    platform.checkpoints.write_text("\n".join(lines) + "\n", encoding="utf-8")

    run = platform.verify()
    assert run.returncode == 1, run.stdout
    assert "access 记录链完整：6 条。" in run.stdout  # relinked: the chain alone cannot tell
    assert "[CHECKPOINT_SIGNATURE_INVALID]" in run.stderr


# ---------------------------------------------------------------------------------------------------------------
# The checkpoint file itself: a line removed, or every line re-signed with the attacker's own key


@pytest.mark.parametrize(
    "order, faults",
    [
        ((0, 2), [(2, 3, "#1 → #3")]),  # the second checkpoint removed
        ((0, 2, 1), [(2, 3, "#1 → #3"), (3, 2, "#3 → #2")]),  # two swapped
        ((0, 1, 2, 0), [(4, 1, "#3 → #1")]),  # the first replayed at the end
    ],
    ids=["removed", "swapped", "replayed"],
)
async def test_a_checkpoint_removed_swapped_or_replayed_in_the_file_is_found(platform, order, faults):
    written = [0]
    for _ in range(3):
        await platform.answer_some(2)
        platform.checkpoint()
        written.append(len(platform.lines()))
    lines = platform.lines()
    groups = [lines[a:b] for a, b in itertools.pairwise(written)]  # the lines each `audit checkpoint` wrote
    platform.checkpoints.write_text("".join(line + "\n" for i in order for line in groups[i]), encoding="utf-8")
    run = platform.verify()
    assert run.returncode == 1, run.stdout
    for line, number, detail in faults:
        assert (
            f"检查点文件第 {line} 行（检查点 #{number}）未通过核验：[CHECKPOINT_GAP] 不接续前一个检查点（{detail}）"
            in run.stderr
        )
    assert run.stderr.count("CHECKPOINT_") == len(faults)
    assert "access 记录链完整：6 条。" in run.stdout


async def test_a_file_re_signed_with_the_attackers_key_placed_in_var_fails(platform):
    await platform.answer_some(6)
    platform.checkpoint()
    head = platform.truncate_access(keep=3)
    theirs = Ed25519PrivateKey.generate()
    # The attacker's key where a development server keeps its own, and its public half beside the checkpoints.
    (platform.var / "audit-signing.key").write_bytes(
        theirs.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    raw = theirs.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (platform.var / "audit-signing.pub").write_text("ed25519:" + base64.b64encode(raw).decode())
    platform.rewrite_heads(3, head, sign_with=theirs)

    run = platform.verify()
    assert run.returncode == 1, run.stdout
    assert f"[CHECKPOINT_UNKNOWN_KEY] 签名所用的密钥 {_public_id(theirs)} 不是配置的核验公钥。" in run.stderr
    assert "access 记录链完整：3 条。" in run.stdout
    # Signed with the configured key's own private half, the same rewrite would have passed: the key decides.
    assert "最后一个有效检查点：#" not in run.stdout


# ---------------------------------------------------------------------------------------------------------------
# A real server: a checkpoint every N records, and the last checkpoints cut off while it runs


def _wait_for_checkpoints(platform: Platform, count: int, server: _Server) -> list[dict]:
    deadline = time.monotonic() + 20
    while True:
        lines = platform.lines() if platform.checkpoints.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        assert time.monotonic() < deadline, f"{len(lines)} checkpoint(s), not {count}:\n" + "".join(server.lines[-40:])
        time.sleep(0.05)


def _wait_for_log(server: _Server, pattern: str) -> None:
    """The server's log is read by a thread of its own: a line logged before a file write may arrive after it."""
    deadline = time.monotonic() + 20
    while not any(re.search(pattern, line) for line in list(server.lines)):
        assert time.monotonic() < deadline, f"no log line like {pattern!r}:\n" + "".join(server.lines[-40:])
        time.sleep(0.05)


def _query(server: _Server, platform: Platform, n: int) -> None:
    for _ in range(n):
        response = httpx.post(
            f"{server.url}/graphql",
            json={"query": QUERY},
            timeout=10,
            headers={"Authorization": f"Bearer {demo_keys(platform.folder)['land']}", "X-Purpose": PURPOSE},
        )
        assert response.status_code == 200 and response.json()["data"]["enterpriseList"]["items"], response.text


def test_the_server_checkpoints_every_n_records_and_a_cut_off_tail_shows_at_its_next_checkpoint(platform):
    # No checkpoint by time during the test: only the record count can cause one.
    platform.env |= {"GOVSHARE_AUDIT_CHECKPOINT_RECORDS": "5", "GOVSHARE_AUDIT_CHECKPOINT_SECONDS": "3600"}
    server = _Server(platform.folder, env=platform.env)
    try:
        server.wait_until_healthy()
        _query(server, platform, 5)
        first = _wait_for_checkpoints(platform, 1, server)
        assert first[0]["n"] == 1 and first[0]["heads"]["access"][0] == 5
        _query(server, platform, 5)
        second = _wait_for_checkpoints(platform, 2, server)
        assert second[1]["n"] == 2 and second[1]["heads"]["access"][0] == 10

        # The insider removes records 6-10 and the checkpoint that covered them (the file's last line). The
        # file alone is now whole: nothing in it tells that a line is gone.
        platform.truncate_access(keep=5)
        platform.checkpoints.write_text(platform.lines()[0] + "\n", encoding="utf-8")
        alone = platform.verify()
        assert alone.returncode == 0, alone.stderr

        # The server remembers what it wrote: its next checkpoint follows #2, so the gap is signed into the file.
        _query(server, platform, 5)
        third = _wait_for_checkpoints(platform, 2, server)
        assert third[1]["n"] == 3
        _wait_for_log(server, r"audit checkpoint #2, written by this process, is no longer in")
        # every checkpoint is in the server's log too
        _wait_for_log(server, r"audit checkpoint #1 written to .* digest [0-9a-f]{64}: access 5")
    finally:
        server.stop()
    run = platform.verify()
    assert run.returncode == 1, run.stdout
    assert "检查点文件第 2 行（检查点 #3）未通过核验：[CHECKPOINT_GAP]" in run.stderr
    # The server wrote a last checkpoint as it stopped: nothing it recorded is left uncovered.
    assert "access 记录链完整：10 条。" in run.stdout and "尚未被检查点覆盖" not in run.stdout


# ---------------------------------------------------------------------------------------------------------------
# Keys and production


def test_keygen_writes_a_private_key_once_and_prints_its_public_half(platform):
    key_file = platform.folder / "elsewhere" / "audit.key"
    made = platform.govshare_subprocess("audit", "keygen", "--output", str(key_file))
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    assert re.fullmatch(r"ed25519:[A-Za-z0-9+/]{43}=", public)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "audit_verify_public_key" in made.stderr
    again = platform.govshare_subprocess("audit", "keygen", "--output", str(key_file))
    assert again.returncode == 1 and "[AUDIT_KEY_EXISTS]" in again.stderr
    env = {"GOVSHARE_AUDIT_SIGNING_KEY_FILE": str(key_file), "GOVSHARE_AUDIT_VERIFY_PUBLIC_KEY": public}
    assert platform.govshare_subprocess("audit", "checkpoint", **env).returncode == 0
    assert platform.govshare_subprocess("audit", "verify", **env).returncode == 0
    # Checkpoints signed with that key fail against any other configured public key.
    other = platform.govshare("audit", "verify", GOVSHARE_AUDIT_SIGNING_KEY_FILE=str(key_file))
    assert other.returncode == 1 and "[CHECKPOINT_UNKNOWN_KEY]" in other.stderr
    # And a server whose key is not the configured public key refuses to sign what nobody could verify.
    mismatch = platform.govshare("audit", "checkpoint", GOVSHARE_AUDIT_SIGNING_KEY_FILE=str(key_file))
    assert mismatch.returncode == 1 and "[AUDIT_KEY_MISMATCH]" in mismatch.stderr


@pytest.mark.parametrize(
    "setting, value, code",
    [
        ("audit_checkpoint_file", None, "AUDIT_FILE_UNDER_VAR"),  # the default, {var}/audit-checkpoints.jsonl
        ("audit_signing_key_file", "{var}/keys/audit.key", "AUDIT_FILE_UNDER_VAR"),
        ("audit_signing_key_file", "", "AUDIT_SIGNING_KEY_REQUIRED"),
        ("audit_signing_key_file", "{outside}/missing.key", "AUDIT_SIGNING_KEY_UNREADABLE"),  # never made in production
    ],
)
def test_a_production_server_refuses_a_checkpoint_file_or_key_under_var_or_no_key(tmp_path, setting, value, code):
    import dataclasses

    from govshare.errors import AuditKeyError
    from server import create_app

    outside = tmp_path / "worm"
    key_file = outside / "audit.key"
    _new_key(key_file)
    settings = dataclasses.replace(
        make_settings(tmp_path / "var"),
        production=True,
        audit_checkpoint_file=str(outside / "checkpoints.jsonl"),
        audit_signing_key_file=str(key_file),
    )
    if value is not None:
        settings = dataclasses.replace(settings, **{setting: value.replace("{outside}", str(outside))})
    else:
        settings = dataclasses.replace(settings, **{setting: getattr(type(settings)(), setting)})
    with pytest.raises(AuditKeyError) as refused:
        create_app(settings)
    assert refused.value.code == code
    assert not (tmp_path / "var" / "audit-signing.key").exists()


def test_govshare_serve_in_production_refuses_var_with_a_code_and_verify_needs_the_configured_key(tmp_path):
    env = environment(tmp_path) | {"GOVSHARE_PRODUCTION": "true"}
    serve = subprocess.run(
        [govshare_command(), "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert serve.returncode == 1
    assert "[AUDIT_FILE_UNDER_VAR] 生产环境中 audit_checkpoint_file" in serve.stderr
    assert "Uvicorn running" not in serve.stderr + serve.stdout
    # Production creates no platform database on its own (migrations.ensure_current): it is made explicitly.
    made = subprocess.run(
        [govshare_command(), "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert made.returncode == 0 and "已在空数据库上建立结构版本" in made.stdout, made.stderr
    verify = subprocess.run(
        [govshare_command(), "audit", "verify"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert verify.returncode == 1 and "[AUDIT_VERIFY_KEY_REQUIRED]" in verify.stderr


def test_development_makes_its_key_under_var_and_says_so(tmp_path, caplog):
    from server import create_app

    with caplog.at_level("WARNING", logger="govshare.audit.checkpoints"):
        create_app(make_settings(tmp_path / "var"))
    assert (tmp_path / "var" / "audit-signing.key").stat().st_mode & 0o777 == 0o600
    assert any("development: generated the audit checkpoint signing key" in r.getMessage() for r in caplog.records)


async def test_a_line_that_is_no_checkpoint_is_reported_and_the_next_checkpoint_still_follows_the_last(platform):
    await platform.answer_some(2)
    platform.checkpoint()
    with platform.checkpoints.open("a", encoding="utf-8") as file:
        file.write('{"n": 2, "heads": "all fine"}\n{"torn": ')  # a forged line, and a write cut short
    platform.checkpoint()
    run = platform.verify()
    assert run.returncode == 1, run.stdout
    assert "检查点文件第 2 行（检查点 #2）未通过核验：[CHECKPOINT_MALFORMED]" in run.stderr
    assert "检查点文件第 3 行（检查点 #?）未通过核验：[CHECKPOINT_MALFORMED]" in run.stderr
    assert run.stderr.count("[CHECKPOINT_") == 2  # the checkpoint after them (#3) follows #2 as its writer saw it
    assert "最后一个有效检查点：#3" in run.stdout


async def test_a_line_json_cannot_decode_is_malformed_for_verify_and_the_writer_follows_past_it(tmp_path):
    """Lines json.loads refuses with other exceptions than a syntax error (an integer too long to convert:
    ValueError; nesting too deep: RecursionError) are malformed checkpoints, not a crash of verify or of the writer."""
    from audit.checkpoints import Checkpointer, check_checkpoints, verification_keys
    from govshare.platformdb import make_engine
    from migrations import ensure_current

    settings = make_settings(tmp_path / "var")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    try:
        await ensure_current(engine)
        checkpoints = Checkpointer(settings)
        async with engine.connect() as conn:
            await checkpoints.write(conn)
            with checkpoints.path.open("a", encoding="utf-8") as file:
                file.write('{"n": ' + "9" * 5000 + "}\n" + "[" * 20000 + "\n")
            written = await checkpoints.write(conn)
    finally:
        await engine.dispose()
    assert written["n"] == 2  # it follows #1, the newest line with a number
    checked = check_checkpoints(checkpoints.path, verification_keys(settings)[0])
    assert [(f.line, f.number, f.code) for f in checked.faults] == [
        (2, None, "CHECKPOINT_MALFORMED"),
        (3, None, "CHECKPOINT_MALFORMED"),
    ]
    assert "integer string conversion" in checked.faults[0].detail
    assert "recursion" in checked.faults[1].detail
    assert [entry["n"] for entry in checked.valid] == [1, 2]
