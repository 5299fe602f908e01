"""Signed checkpoints of the audit hash chains, and the Ed25519 key that signs them.

A checkpoint is one line of JSON appended to ``audit_checkpoint_file``: its number, when it was written, each
chain's head (seq and hash), the SHA-256 of the line before it, the id of the key that signed it and an
Ed25519 signature over all of that. The private key lives in a file outside the platform database
(``audit_signing_key_file``); ``govshare audit verify`` checks signatures with the public keys of its own
configuration only (``audit_verify_public_key``), never with a key found beside the checkpoints.

An edited line fails its signature; a line removed from the middle breaks the numbering and the link of the
line after it. The last lines removed leave a shorter file that is whole in itself: a server that finds the
checkpoint it wrote last gone says so in its log and links its next checkpoint to the missing one, and
every checkpoint is logged (number and digest) so the log can be compared with the file.

Imports ``govshare`` and the chain heads' table.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.chain import Head, chain_heads
from govshare.config import Settings
from govshare.errors import AuditKeyError
from govshare.logs import logger

log = logger(__name__)  # govshare.<module>: one logging configuration covers it

GENESIS = "0" * 64
KEY_PREFIX = "ed25519:"
# Signed together with each line, so that a signature made by this key for anything else is never a checkpoint.
SIGNING_CONTEXT = b"govshare audit checkpoint v1\n"
TAIL_BYTES = 65536  # how much of the file's end is read to find the checkpoint to follow

# A checkpoint as its line holds it: a decoded JSON object (``_shape`` says what a well-formed one holds).
Entry = dict[str, Any]


def _canonical(value: Mapping[str, object]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def public_key_text(public: Ed25519PublicKey) -> str:
    """The form ``audit_verify_public_key`` takes: ``ed25519:`` and the raw 32 bytes in base64."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """The configured verification keys by key id (several, comma-separated, while a key is being replaced)."""
    keys = {}
    for value in (part.strip() for part in text.split(",")):
        if not value:
            continue
        try:
            if not value.startswith(KEY_PREFIX):
                raise ValueError
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(value[len(KEY_PREFIX) :], validate=True))
        except ValueError:
            raise AuditKeyError("AUDIT_VERIFY_KEY_INVALID", value=value) from None
        keys[key_id(public)] = public
    return keys


def generate_key(path: Path) -> Ed25519PrivateKey:
    """A new private key in ``path`` (PEM, mode 0600); an existing file is never overwritten."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise AuditKeyError("AUDIT_KEY_EXISTS", path=path)
    # Written whole beside it, then linked in place: a process starting at the same moment reads a whole key or
    # none, and a key that is there is never replaced (link fails on an existing name).
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        os.link(draft, path)
    except FileExistsError:
        raise AuditKeyError("AUDIT_KEY_EXISTS", path=path) from None
    finally:
        draft.unlink(missing_ok=True)
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AuditKeyError("AUDIT_SIGNING_KEY_UNREADABLE", path=path, detail=str(exc) or type(exc).__name__) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError("AUDIT_SIGNING_KEY_UNREADABLE", path=path, detail="not an Ed25519 key")
    return key


def _under(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def signing_key(settings: Settings) -> tuple[Ed25519PrivateKey, Path]:
    """The key this process signs checkpoints with. Production refuses a key or checkpoint file under var_dir
    (the database administrator's reach) and a missing key; development makes one under var/ and says so."""
    checkpoints = Path(settings.expand(settings.audit_checkpoint_file))
    path = Path(settings.expand(settings.audit_signing_key_file)) if settings.audit_signing_key_file else None
    if settings.production:
        if path is None:
            raise AuditKeyError("AUDIT_SIGNING_KEY_REQUIRED")
        for setting, value in (("audit_checkpoint_file", checkpoints), ("audit_signing_key_file", path)):
            if _under(value, settings.var_dir):
                raise AuditKeyError("AUDIT_FILE_UNDER_VAR", setting=setting, path=value, var=settings.var_dir.resolve())
        key = load_key(path)
    elif path is None:
        raise AuditKeyError("AUDIT_SIGNING_KEY_REQUIRED")
    elif path.exists():
        key = load_key(path)
    else:
        try:
            key = generate_key(path)
        except AuditKeyError:  # another process starting at the same time made it first
            key = load_key(path)
        else:
            log.warning(
                "development: generated the audit checkpoint signing key %s (public key %s); production "
                "refuses a key under var/: run 'govshare audit keygen' and configure audit_signing_key_file",
                path,
                public_key_text(key.public_key()),
            )
    configured = parse_public_keys(settings.audit_verify_public_key)
    if configured and key_id(key.public_key()) not in configured:
        raise AuditKeyError("AUDIT_KEY_MISMATCH", path=path, key=public_key_text(key.public_key()))
    return key, path


def verification_keys(settings: Settings) -> tuple[dict[str, Ed25519PublicKey], Path | None]:
    """The public keys ``verify`` trusts: the configured ones; in development without any, the public half of
    the development signing key (returned as the second value, so the caller says so)."""
    if settings.audit_verify_public_key.strip():
        return parse_public_keys(settings.audit_verify_public_key), None
    if settings.production:
        raise AuditKeyError("AUDIT_VERIFY_KEY_REQUIRED")
    path = Path(settings.expand(settings.audit_signing_key_file)) if settings.audit_signing_key_file else None
    if path is None or not path.exists():
        return {}, None  # nothing can be verified: every checkpoint is reported as signed by an unknown key
    public = load_key(path).public_key()
    return {key_id(public): public}, path


def _tail(file: BinaryIO) -> list[str]:
    """The complete lines at the end of the open file (at most TAIL_BYTES of it)."""
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - TAIL_BYTES))
    lines = file.read().decode("utf-8", errors="replace").split("\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first is cut
    return [line for line in lines if line.strip()]


def _decode(line: str) -> tuple[object, str | None]:
    """(the line's JSON value, None), or (None, why it is not JSON). Besides syntax errors (JSONDecodeError),
    json.loads raises ValueError for an integer too long to convert and RecursionError for nesting too deep."""
    try:
        return json.loads(line), None
    except json.JSONDecodeError as exc:
        return None, f"JSON: {exc.msg}"
    except (ValueError, RecursionError) as exc:
        return None, f"JSON: {exc}"


def _number(entry: object) -> int | None:
    number = entry.get("n") if isinstance(entry, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _position(line: str) -> int | None:
    return _number(_decode(line)[0])


class Checkpointer:
    """Writes signed checkpoints for one process (the server, or one ``govshare audit checkpoint``), one line
    at a time under an exclusive lock on the file, so that processes sharing it extend one sequence."""

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.expand(settings.audit_checkpoint_file))
        self._key, self.key_path = signing_key(settings)
        self.key_id = key_id(self._key.public_key())
        self.every_records = settings.audit_checkpoint_records
        self.due = asyncio.Event()  # set once every_records records have been written since the last checkpoint
        self._pending = 0
        self._last: tuple[int, str] | None = None  # (number, digest) of the last checkpoint this process wrote

    def counted(self, records: int) -> None:
        self._pending += records
        if self.every_records and self._pending >= self.every_records:
            self.due.set()

    async def write(self, conn: AsyncConnection) -> Entry:
        """Sign the chains' heads as ``conn`` sees them and append them; the checkpoint written."""
        self._pending = 0
        self.due.clear()
        heads = {h.chain: [h.seq, h.hash] for h in (await conn.execute(select(chain_heads))).all()}
        return await asyncio.to_thread(self._append, heads)

    def _append(self, heads: dict[str, list[int | str]]) -> Entry:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # released when the file is closed
            lines = _tail(file)
            number, prev = 0, GENESIS
            for line in reversed(lines):  # follow the newest line that is a checkpoint
                if (position := _position(line)) is not None:
                    number, prev = position, _digest(line)
                    break
            if self._last is not None:
                mine = [line for line in lines if _position(line) == self._last[0]]
                oldest = next((p for p in map(_position, lines) if p is not None), None)
                if (not mine or _digest(mine[-1]) != self._last[1]) and (oldest is None or oldest <= self._last[0]):
                    log.error(
                        "audit checkpoint #%d, written by this process, is no longer in %s: the file was "
                        "rewritten or truncated. The next checkpoint follows #%d, so verify reports the gap.",
                        self._last[0],
                        self.path,
                        self._last[0],
                    )
                    number, prev = self._last
            number += 1
            entry: Entry = {
                "n": number,
                "at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "heads": heads,
                "prev": prev,
                "key": self.key_id,
            }
            signature = self._key.sign(SIGNING_CONTEXT + _canonical(entry).encode())
            entry["sig"] = base64.b64encode(signature).decode()
            line = _canonical(entry)
            file.seek(0, os.SEEK_END)
            if file.tell() and (file.seek(-1, os.SEEK_END), file.read(1))[1] != b"\n":
                file.write(b"\n")  # a torn last line stays a line of its own (verify reports it)
            file.write(line.encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        self._last = written = (number, _digest(line))
        # The log is a second record of each checkpoint, kept apart from the file: the last lines of the file
        # removed are seen by comparing the two.
        log.info(
            "audit checkpoint #%d written to %s, digest %s: %s",
            number,
            self.path,
            written[1],
            ", ".join(f"{chain} {seq}" for chain, (seq, _) in sorted(heads.items())),
        )
        return entry


@dataclass(frozen=True)
class CheckpointFault:
    """A line of the checkpoint file that fails verification."""

    line: int
    number: int | None
    code: str  # CHECKPOINT_MALFORMED | CHECKPOINT_UNSIGNED | CHECKPOINT_UNKNOWN_KEY | CHECKPOINT_SIGNATURE_INVALID | CHECKPOINT_GAP
    detail: str = ""


@dataclass
class CheckedCheckpoints:
    """The checkpoints whose signatures hold, and every line that fails."""

    valid: list[Entry] = field(default_factory=list)
    faults: list[CheckpointFault] = field(default_factory=list)
    last_digest: str | None = None

    def heads(self) -> list[Head]:
        """Every signed head, in the form ``audit.chain.verify`` checks the chain against."""
        return [
            {"chain": chain, "seq": seq, "hash": digest}
            for entry in self.valid
            for chain, (seq, digest) in entry["heads"].items()
        ]

    def covered(self, chain: str) -> int:
        """The newest record of ``chain`` that a valid checkpoint holds (0: none)."""
        return max((entry["heads"][chain][0] for entry in self.valid if chain in entry["heads"]), default=0)


def _shape(entry: object) -> Entry | str:
    """The entry if it has a checkpoint's shape, else what is wrong with it."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if _number(entry) is None:
        return "no number"
    heads = entry.get("heads")
    if not isinstance(heads, dict) or not all(
        isinstance(h, list) and len(h) == 2 and isinstance(h[0], int) and isinstance(h[1], str) for h in heads.values()
    ):
        return "no chain heads"
    if not all(isinstance(entry.get(name), str) for name in ("at", "prev", "key")):
        return "missing at, prev or key"
    return entry


def _signature_fault(at: int, entry: Entry, keys: dict[str, Ed25519PublicKey]) -> CheckpointFault | None:
    """What is wrong with a well-formed entry's signature (None: it holds)."""
    if not isinstance(entry.get("sig"), str):
        return CheckpointFault(at, entry["n"], "CHECKPOINT_UNSIGNED")
    if entry["key"] not in keys:
        return CheckpointFault(at, entry["n"], "CHECKPOINT_UNKNOWN_KEY", entry["key"])
    body = {k: v for k, v in entry.items() if k != "sig"}
    try:
        keys[entry["key"]].verify(
            base64.b64decode(entry["sig"], validate=True), SIGNING_CONTEXT + _canonical(body).encode()
        )
    except (InvalidSignature, ValueError):
        return CheckpointFault(at, entry["n"], "CHECKPOINT_SIGNATURE_INVALID")
    return None


def check_checkpoints(path: Path, keys: dict[str, Ed25519PublicKey]) -> CheckedCheckpoints:
    """Verify every line of ``path`` with ``keys`` only: its signature, and that it follows the line before."""
    checked = CheckedCheckpoints()
    if not path.exists():
        return checked
    number, prev = 0, GENESIS  # what the next checkpoint must follow
    for at, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), start=1):
        if not line.strip():
            continue
        digest = _digest(line)
        decoded, problem = _decode(line)
        own = _number(decoded)
        entry = _shape(decoded) if problem is None else problem
        if isinstance(entry, str):
            if isinstance(decoded, dict) and "sig" not in decoded and "chain" in decoded:  # written before signing
                checked.faults.append(CheckpointFault(at, own, "CHECKPOINT_UNSIGNED"))
            else:
                checked.faults.append(CheckpointFault(at, own, "CHECKPOINT_MALFORMED", entry))
        elif (fault := _signature_fault(at, entry, keys)) is not None:
            checked.faults.append(fault)
        else:
            if entry["prev"] != prev or entry["n"] != number + 1:
                before = f"#{number}" if number else "#0"  # #0: the start of the file
                checked.faults.append(CheckpointFault(at, own, "CHECKPOINT_GAP", f"{before} → #{entry['n']}"))
            checked.valid.append(entry)  # its signature holds: its heads are what the platform wrote
            checked.last_digest = digest
        if own is not None:  # the writer follows the newest line with a number, whatever else is wrong with it
            number, prev = own, digest
    return checked
