"""Which catalog data items provide a form's field (Art 19 ¶2: what the platform provides is not asked again).

A Chinese full-text index of the catalog in force, over SQLite FTS5 (the standard library's sqlite3, in memory),
built once per catalog version: every published resource's data items by their Chinese label, and the synonyms of
``synonyms.toml`` (groups of labels that mean the same, and extra labels of particular items). Two indexes of the
same texts, because FTS5's ``trigram`` tokenizer matches substrings of three characters or more only:

- ``trigram``: a form label (or a synonym of it) of 3 characters or more found inside a catalog text
  (身份证号 in 法定代表人身份证号码);
- ``bigram``: each text as the space-separated list of its character pairs, in a ``unicode61`` FTS5 table (each
  pair one token): a 2-character label (姓名) is one token, so it finds every text holding it; and the texts that
  lie inside a longer form label (姓名 inside 申请人姓名) are found by the pairs they share with it, then checked.

No segmenter (jieba) is needed: a segmenter decides where words end from its dictionary (户籍地址 may be one word
or two), and a label it splits differently from the form's is missed; character pairs and trigrams find every
substring whatever the dictionary, and the index of a catalog of some thousand items stays well under a megabyte.
One-character labels match only a text equal to them (a single character says too little to find by).

May import: ``catalog.model``.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from catalog.model import Catalog, Resource, Status, changed_resources

SYNONYMS_FILE = Path(__file__).with_name("synonyms.toml")
# Notes a label may carry in brackets (月救助金额（元）): indexed with and without them.
_BRACKETED = re.compile(r"[（(][^）)]*[）)]")
# What a form's field label may carry around its name: spaces, a colon, a required-field star.
_DECORATION = re.compile(r"[\s:：*＊]+")


class Match(StrEnum):
    """How a catalog item answers a form's field, strongest first."""

    LABEL = "label"  # its Chinese label is the form's label
    SYNONYM = "synonym"  # its label, or one of its own synonyms, is a synonym of the form's label
    PARTIAL = "partial"  # one holds the other (姓名 / 男方姓名): perhaps another person's name; look before using


def normalize(text: str) -> str:
    """A label as compared: full-width forms folded (NFKC), case folded, spaces, colons and stars removed."""
    return _DECORATION.sub("", unicodedata.normalize("NFKC", text)).casefold()


def _bigrams(text: str) -> str:
    return " ".join(text[i : i + 2] for i in range(len(text) - 1))


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass(frozen=True)
class Synonyms:
    """``groups``: labels that mean the same (身份证号, 公民身份号码); ``items``: extra labels of one catalog item,
    by (resource code, item name) (婚姻状况 for civil.marriage's registrationType)."""

    groups: tuple[tuple[str, ...], ...] = ()
    items: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def load(cls, path: Path = SYNONYMS_FILE) -> Synonyms:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        groups = tuple(tuple(normalize(t) for t in group) for group in document.get("groups", ()))
        items = tuple(
            (entry["resource"], entry["item"], tuple(normalize(t) for t in entry["synonyms"]))
            for entry in document.get("items", ())
        )
        return cls(groups, items)

    def of(self, label: str) -> tuple[str, ...]:
        """The labels meaning the same as ``label`` (normalised), itself excluded."""
        found: dict[str, None] = {}
        for group in self.groups:
            if label in group:
                found.update(dict.fromkeys(t for t in group if t != label))
        return tuple(found)

    def within(self, label: str) -> tuple[str, ...]:
        """The labels of every group one of whose labels (2 characters or more) lies inside ``label`` without being
        it (申请人身份证号 holds 身份证号): what the form's field may be, to be checked (partial matches)."""
        found: dict[str, None] = {}
        for group in self.groups:
            if label not in group and any(len(t) >= 2 and t in label for t in group):
                found.update(dict.fromkeys(group))
        return tuple(found)


@dataclass(frozen=True)
class Hit:
    resource: str
    item: str
    match: Match
    text: str  # the catalog text that matched (a label or an item synonym)


class FormIndex:
    """The index of one catalog version's published items; ``find`` answers one form label.

    With ``previous`` (the index of the catalog version before, over the same synonyms), the index follows the
    catalog's change: a copy of ``previous``'s database (SQLite's backup, page by page) with the rows of the resources
    that are not the objects ``previous`` was made of written again, so a change to one resource writes its rows, not
    every item of the catalog. A resource's rows (its labels, then its items' synonyms) keep their order among
    themselves, so ``find`` answers as the index built whole does."""

    def __init__(self, catalog: Catalog, synonyms: Synonyms | None = None, previous: FormIndex | None = None) -> None:
        self.version = catalog.version
        self.synonyms = synonyms if synonyms is not None else Synonyms.load()
        # Built in a worker thread with the snapshot, searched in others (resolvers/forms.py): the module's SQLite
        # serialises every use of one connection (sqlite3.threadsafety 3), checked here rather than assumed.
        if sqlite3.threadsafety != 3:
            raise RuntimeError("the form search needs SQLite built serialized (sqlite3.threadsafety == 3)")
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._resources = catalog.resources
        # the synonyms of each resource's items, in the file's order
        self._item_synonyms: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for code, name, texts in self.synonyms.items:
            self._item_synonyms.setdefault(code, []).append((name, texts))
        self.unknown: list[tuple[str, str]] = [  # synonyms naming an item the catalog does not publish
            (code, name)
            for code, name, _ in self.synonyms.items
            if (resource := self._published(code)) is None or resource.item(name) is None
        ]
        self._rows: dict[str, list[int]] = {}  # resource code -> the ids of its rows
        self._next = 1
        if previous is not None and previous.synonyms == self.synonyms:
            previous._db.backup(self._db)
            self._rows = dict(previous._rows)
            self._next = previous._next
            for code in changed_resources(previous._resources, catalog):
                for number in self._rows.pop(code, ()):
                    self._db.execute("DELETE FROM entry WHERE id = ?", (number,))
                    self._db.execute("DELETE FROM tri WHERE rowid = ?", (number,))
                    self._db.execute("DELETE FROM bi WHERE rowid = ?", (number,))
                if self._published(code) is not None:
                    self._write(code, self._labels(code) + self._synonym_rows(code))
        else:
            self._db.executescript(
                """
                CREATE TABLE entry (id INTEGER PRIMARY KEY, resource TEXT, item TEXT, text TEXT, own INTEGER);
                CREATE INDEX entry_text ON entry (text);
                CREATE VIRTUAL TABLE tri USING fts5(text, tokenize = 'trigram');
                CREATE VIRTUAL TABLE bi USING fts5(grams, tokenize = 'unicode61');
                """
            )
            for resource in catalog.published():
                self._write(resource.code, self._labels(resource.code))
            for code in self._item_synonyms:
                self._write(code, self._synonym_rows(code))
        self._db.commit()

    def _published(self, code: str) -> Resource | None:
        resource = self._resources.get(code)
        return resource if resource is not None and resource.status == Status.PUBLISHED else None

    def _labels(self, code: str) -> list[tuple[str, str, int]]:
        rows = []
        for item in self._resources[code].items:
            label = normalize(item.label)
            for text in dict.fromkeys((label, normalize(_BRACKETED.sub("", item.label)))):
                rows.append((item.name, text, 1))
        return rows

    def _synonym_rows(self, code: str) -> list[tuple[str, str, int]]:
        resource = self._published(code)
        if resource is None:
            return []
        return [
            (name, text, 0)
            for name, texts in self._item_synonyms.get(code, ())
            if resource.item(name) is not None
            for text in texts
        ]

    def _write(self, code: str, rows: list[tuple[str, str, int]]) -> None:
        numbers = self._rows.setdefault(code, [])
        for name, text, own in rows:
            number = self._next
            self._next += 1
            numbers.append(number)
            self._db.execute("INSERT INTO entry VALUES (?, ?, ?, ?, ?)", (number, code, name, text, own))
            self._db.execute("INSERT INTO tri (rowid, text) VALUES (?, ?)", (number, text))
            self._db.execute("INSERT INTO bi (rowid, grams) VALUES (?, ?)", (number, _bigrams(text)))
        if not numbers:
            del self._rows[code]

    def _containing(self, term: str) -> list[tuple[str, str, str, int]]:
        """Entries whose text holds ``term``: from the trigram index (3+ characters), the pair index (2), or equal
        to it (1)."""
        select = "SELECT e.resource, e.item, e.text, e.own FROM entry e JOIN {table} f ON f.rowid = e.id "
        if len(term) >= 3:
            return self._db.execute(select.format(table="tri") + "WHERE tri MATCH ?", (_phrase(term),)).fetchall()
        if len(term) == 2:
            return self._db.execute(select.format(table="bi") + "WHERE bi MATCH ?", (_phrase(term),)).fetchall()
        return self._db.execute("SELECT resource, item, text, own FROM entry WHERE text = ?", (term,)).fetchall()

    def _inside(self, term: str) -> list[tuple[str, str, str, int]]:
        """Entries of 2 characters or more whose text lies inside ``term``: found by a character pair they share."""
        if len(term) < 3:
            return []
        pairs = " OR ".join(_phrase(p) for p in dict.fromkeys(_bigrams(term).split()))
        rows = self._db.execute(
            "SELECT e.resource, e.item, e.text, e.own FROM entry e JOIN bi f ON f.rowid = e.id WHERE bi MATCH ?",
            (pairs,),
        ).fetchall()
        return [row for row in rows if row[2] in term]

    def find(self, label: str) -> tuple[tuple[str, ...], list[Hit]]:
        """(the synonyms of ``label``, the items answering it, strongest match first; one hit per item). The labels
        of a synonym group found inside ``label`` are searched too, their hits partial."""
        wanted = normalize(label)
        if not wanted:
            return (), []
        synonyms = self.synonyms.of(wanted)
        best: dict[tuple[str, str], Hit] = {}

        def offer(hit: Hit) -> None:
            key = (hit.resource, hit.item)
            rank = list(Match)
            if key not in best or rank.index(hit.match) < rank.index(best[key].match):
                best[key] = hit

        weak = set(self.synonyms.within(wanted)) - {wanted, *synonyms}
        for term in (wanted, *synonyms, *sorted(weak)):
            for resource, item, text, own in self._containing(term) + self._inside(term):
                if text == term and term not in weak:
                    strength = Match.LABEL if (term == wanted and own) else Match.SYNONYM
                else:
                    strength = Match.PARTIAL
                offer(Hit(resource, item, strength, text))
        order = list(Match)
        return synonyms, sorted(best.values(), key=lambda h: (order.index(h.match), h.resource, h.item))
