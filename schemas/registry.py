"""The schema catalog in the repository, and Avro in the Confluent wire format.

Every top-level schema (a *subject*, e.g. ``nl.wijkhub.RawEvent``) has numbered
versions recorded in ``catalog.json``, each with a global schema id and a frozen
copy of the fully expanded schema under ``registered/``. A record on a topic is
``0x00`` + the 4-byte big-endian schema id + the Avro body, so a real Schema
Registry can take over later without rewriting any topic.

Why the catalog refuses to start on a changed schema: a consumer may have to
read records written years ago (replay). A schema that differs from its last
registered version is checked for BACKWARD compatibility (the new schema can
read everything written with every older version) before it can be used, and
must then be registered (``wijkhub schemas register``) so it gets an id.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import expand_schema, load_schema

SCHEMA_DIR = Path(__file__).resolve().parent
MAGIC = 0
_HEADER = struct.Struct(">bI")

# The subjects the hub writes. Shared named types (Envelope, Subject) live in
# their own files and are pulled in by reference.
RAW_EVENT = "nl.wijkhub.RawEvent"
LINKED_EVENT = "nl.wijkhub.LinkedEvent"
ALERT = "nl.wijkhub.Alert"
HOUSEHOLD_VIEW = "nl.wijkhub.HouseholdView"
ROUTED = "nl.wijkhub.Routed"
AUDIT_ENTRY = "nl.wijkhub.AuditEntry"
ALERT_ACTION = "nl.wijkhub.AlertAction"
ERASURE = "nl.wijkhub.Erasure"
CONTACT_CARD = "nl.wijkhub.ContactCard"
SUBJECTS = (
    RAW_EVENT, LINKED_EVENT, ALERT, HOUSEHOLD_VIEW, ROUTED, AUDIT_ENTRY, ALERT_ACTION, ERASURE,
    CONTACT_CARD,
)  # fmt: skip


class SchemaError(ValueError):
    """The catalog is inconsistent, or a schema change is not allowed."""


class DecodeError(ValueError):
    """Bytes on a topic are not a record this catalog can read. Message has no payload data."""


def expanded(subject: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    """The subject's schema with every named reference inlined (the form that is frozen)."""
    path = directory / f"{subject}.avsc"
    if not path.exists():
        raise SchemaError(f"no schema file {path.name} for subject {subject}")
    # fastavro types a schema as any JSON form; a subject's .avsc is a record (an object).
    return cast(dict[str, Any], expand_schema(load_schema(str(path), _write_hint=False)))


def _canonical(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def backward_incompatibilities(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can."""
    # avro annotates get_compatibility() but not the checker's __init__.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # untyped in avro
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(
        f"{msg} at {loc}" for msg, loc in zip(result.messages, result.locations, strict=False)
    )


@dataclass(frozen=True)
class Version:
    subject: str
    version: int
    schema_id: int
    schema: dict[str, Any]

    @cached_property
    def parsed(self) -> Any:
        return parse_schema(self.schema)


class Catalog:
    """Loads ``catalog.json``, verifies it, and encodes/decodes records.

    Writers always use the latest registered version of a subject; readers
    resolve the writer's version (by the id on the wire) to the latest one.
    """

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.directory = directory
        index = json.loads((directory / "catalog.json").read_text())
        self._by_id: dict[int, Version] = {}
        self._latest: dict[str, Version] = {}
        # (schema id, subject) → (writer, reader) schemas: looked up once per pair
        self._readers: dict[tuple[int, str], tuple[Any, Any]] = {}
        for subject, versions in index["subjects"].items():
            previous: list[Version] = []
            for entry in versions:
                frozen = json.loads((directory / entry["file"]).read_text())
                v = Version(subject, entry["version"], entry["id"], frozen)
                if v.schema_id in self._by_id:
                    raise SchemaError(f"schema id {v.schema_id} is used twice in catalog.json")
                for older in previous:
                    if problems := backward_incompatibilities(v.schema, older.schema):
                        raise SchemaError(
                            f"{subject} v{v.version} cannot read v{older.version}: {problems}"
                        )
                self._by_id[v.schema_id] = v
                previous.append(v)
            if previous:
                self._latest[subject] = previous[-1]
        self._check_sources_match()

    def _check_sources_match(self) -> None:
        """Refuse to run with an edited .avsc that has not been checked and registered."""
        for subject in SUBJECTS:
            current = expanded(subject, self.directory)
            latest = self._latest.get(subject)
            if latest is None:
                raise SchemaError(f"{subject} is not registered: run `wijkhub schemas register`")
            if _canonical(current) != _canonical(latest.schema):
                problems = self.check_change(subject)
                verdict = (
                    f"is NOT backward compatible: {problems}"
                    if problems
                    else "is backward compatible but not registered: run `wijkhub schemas register`"
                )
                raise SchemaError(f"{subject}.avsc differs from v{latest.version} and {verdict}")

    def check_change(self, subject: str) -> list[str]:
        """Incompatibilities of the edited source schema against every registered version."""
        current = expanded(subject, self.directory)
        problems: list[str] = []
        for v in self._by_id.values():
            if v.subject == subject:
                problems += [
                    f"v{v.version}: {p}" for p in backward_incompatibilities(current, v.schema)
                ]
        return problems

    def latest(self, subject: str) -> Version:
        return self._latest[subject]

    def version(self, schema_id: int) -> Version:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise DecodeError(f"unknown schema id {schema_id}") from None

    def encode(self, subject: str, record: dict[str, Any]) -> bytes:
        v = self._latest[subject]
        out = io.BytesIO()
        out.write(_HEADER.pack(MAGIC, v.schema_id))
        schemaless_writer(out, v.parsed, record)
        return out.getvalue()

    def decode(self, data: bytes | None, subject: str) -> dict[str, Any]:
        """Decode a wire-format record into the latest version of ``subject``."""
        if not data or len(data) < _HEADER.size:
            raise DecodeError("record is empty or shorter than the wire-format header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise DecodeError(f"unknown magic byte {magic}: not Confluent wire format")
        schemas = self._readers.get((schema_id, subject))
        if schemas is None:
            schemas = self._readers[schema_id, subject] = self._reader(schema_id, subject)
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        try:
            record = schemaless_reader(
                body, *schemas, return_record_name=True, return_record_name_override=True
            )
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"corrupt Avro body for {subject}: {type(exc).__name__}") from None
        # fastavro types a datum as any Avro value; every subject is a record schema.
        return cast(dict[str, Any], record)

    def _reader(self, schema_id: int, subject: str) -> tuple[Any, Any]:
        """(writer, reader) schemas of records written with ``schema_id`` and read as the
        latest version of ``subject`` (no reader schema when that is the writer's)."""
        writer = self.version(schema_id)
        if writer.subject != subject:
            raise DecodeError(f"schema id {schema_id} is {writer.subject}, expected {subject}")
        reader = self._latest[subject]
        return writer.parsed, None if reader is writer else reader.parsed


def register_changes(directory: Path = SCHEMA_DIR) -> list[str]:
    """Freeze every changed subject as a new version, after the compatibility check.

    Returns what was registered. Raises :class:`SchemaError` on an incompatible
    change, leaving the catalog untouched.
    """
    index_path = directory / "catalog.json"
    index = json.loads(index_path.read_text())
    subjects = index.setdefault("subjects", {})
    next_id = 1 + max((e["id"] for vs in subjects.values() for e in vs), default=0)
    registered = []
    for subject in SUBJECTS:
        current = expanded(subject, directory)
        versions = subjects.setdefault(subject, [])
        frozen = [json.loads((directory / e["file"]).read_text()) for e in versions]
        if frozen and _canonical(frozen[-1]) == _canonical(current):
            continue
        for entry, old in zip(versions, frozen, strict=True):
            if problems := backward_incompatibilities(current, old):
                raise SchemaError(
                    f"{subject} is not backward compatible with v{entry['version']}: {problems}"
                )
        version = len(versions) + 1
        file = f"registered/{subject}.v{version}.avsc"
        (directory / "registered").mkdir(exist_ok=True)
        (directory / file).write_text(json.dumps(current, indent=2) + "\n")
        versions.append({"version": version, "id": next_id, "file": file})
        registered.append(f"{subject} v{version} (id {next_id})")
        next_id += 1
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return registered
