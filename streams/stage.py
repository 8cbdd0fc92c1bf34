"""The stage contract: ``(state, messages) → (state, outputs)``, nothing of Kafka or Faust.

Each of the three linking stages (person, address, household) is a plain object
with this contract, as bytewax's ``stateful_map`` or Quix Streams' ``State``:
it receives the stored state of *one key* and the messages of one batch for
that key, and returns the new state and the records to send. The Faust
adapter (:mod:`wijkhub.streams.app`) and the in-memory harness
(:mod:`wijkhub.streams.harness`) both run exactly these objects, so the tests
and ``wijkhub rules backtest`` exercise the worker's own logic.

Why a state of *facts*: a stage whose state is the set of facts it has seen,
keyed by their source ids, and whose outputs are recomputed from those facts
and diffed against what it published before, gives the same final outputs for
any arrival order, any replay and any redelivery (see docs/adr and
docs/DESIGN.md). The ordering guarantee that makes a crash just one more
replay is :class:`Plan`, which the Faust adapter and the harness execute:
state with its outbox made durable, then outputs acknowledged, then outboxes
known as delivered, then offsets committed (docs/adr/0001-checkpoint-order.md).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NotRequired, Protocol, TypedDict, TypeVar, runtime_checkable

import orjson

from wijkhub.connectors.deadletter import DeadLetter, letter_key, seal
from wijkhub.schemas.registry import Catalog
from wijkhub.streams.topics import DLQ_STREAMS

Headers = tuple[tuple[str, bytes], ...]
S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)  # a state a protocol only reads


@dataclass(frozen=True)
class Message:
    """One input record: its logical topic (without the cluster prefix), key and value."""

    topic: str
    key: bytes
    value: bytes | None
    origin: str = ""  # topic/partition/offset, for dead letters and logs
    # when the hub received the source record behind this one (its ``caused_at`` header)
    caused_at: float | None = None


@dataclass(frozen=True)
class Output:
    """One record to send: logical topic, key, value (None: a tombstone) and headers."""

    topic: str
    key: bytes
    value: bytes | None
    headers: Headers = ()


@dataclass
class Result(Generic[S]):
    """What a stage returns for one key and one batch.

    ``dirty``: the state changed and must be written back (most batches of a
    stateless route change nothing). ``purge``: the outputs carry personal data of a
    person being erased, so the outbox must not outlive their delivery (:class:`Plan`).
    ``counts``: what happened, for metrics, keyed by tuples whose first element names
    the metric.
    """

    state: S
    outputs: list[Output] = field(default_factory=list)
    dirty: bool = False
    purge: bool = False
    counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    # per fact applied: when the hub received the source record that caused its link
    # (latency), and, for a fact linked again, when the fact itself came (its age)
    caused_at: list[float] = field(default_factory=list)
    relinked_at: list[float] = field(default_factory=list)
    observations: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)


CAUSED_AT = "caused_at"  # header: the receipt (epoch s) of the source record behind a record


def caused_at(headers: Sequence[tuple[str, bytes | None]] | None) -> float | None:
    """The ``caused_at`` header of a record, if it has a readable one (a header is not
    trusted: anything else, a null value too, is no stamp)."""
    for name, value in headers or ():
        if name == CAUSED_AT:
            try:
                at = float(value)  # type: ignore[arg-type]  # None: TypeError, handled
            except (TypeError, ValueError):
                return None
            return at if math.isfinite(at) and at >= 0 else None
    return None


def stamp(outputs: list[Output], topic: str, at: float | None) -> list[Output]:
    """``outputs`` with the ``caused_at`` header on those to ``topic``: the receipt of the
    newest source record the stage's decision saw (the record that completed it, when the
    batch holds one record of the key). For the latency histogram only: never part of what
    a stage decides, so the results stay a function of the set of records."""
    if at is None:
        return outputs
    header = (CAUSED_AT, f"{at:.3f}".encode())
    return [Output(o.topic, o.key, o.value, (*o.headers, header)) if o.topic == topic else o
            for o in outputs]  # fmt: skip


class Stage(Protocol[S]):
    """A stream-processing stage: pure, deterministic, state per key."""

    # Read-only, so that a stage may fix them as class attributes of a narrower type
    # (``inputs = (BY_ADDRESS,)`` is a ``tuple[str]``).
    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> tuple[str, ...]:  # logical topic names it consumes
        ...

    def new_state(self) -> S: ...

    def process(self, state: S, messages: Sequence[Message]) -> Result[S]: ...


@runtime_checkable
class Timed(Protocol[S_contra]):
    """A stage that also acts on the clock, not only on messages (the household stage
    ends alerts on their expiry date even when nothing else happens to the household).

    ``due`` is pure: given one key's state and the wall-clock time, the records to send
    *as inputs* (to a topic the stage itself reads). Sending them as records keeps the
    clock out of the stage's state: a replay reads the same records and decides the same.
    Its outputs must be idempotent (deterministic ids): a sweep may run again before the
    stage has read what the previous one sent.
    """

    name: str

    def due(self, state: S_contra, key: bytes, now: float) -> list[Output]: ...


def dead_letter(stage: str, message: Message, code: str, reason: str) -> Output:
    """A record this stage cannot process: to ``dlq.streams`` with its original bytes."""
    letter = DeadLetter(
        stage=stage,
        reason_code=code,
        reason=reason,
        source=message.topic,
        original=message.value or b"",
        origin=message.origin,
    )
    return Output(DLQ_STREAMS, message.key, letter.original, tuple(letter.headers()))


def sealed(output: Output, key: bytes) -> Output:
    """A dead letter as it leaves the worker: its original bytes sealed under the dead-letter
    key, as the connectors seal theirs. An undecodable or refused record can hold anything
    (a source's clear data relayed by mistake), and ``dlq.streams`` is read by operators:
    only the reason is for everyone; the bytes are for whoever holds the key.

    The original key (a person_ref, a building's postcode and number, a household) is
    sealed too, in the ``dl_key`` header (base64); the record's key is a keyed digest of it and
    the record (:func:`letter_key`), so that a reader keeping the latest per key sees
    every letter, and nobody without the key learns whom or which address it is about."""
    if output.topic != DLQ_STREAMS or output.value is None:
        return output
    headers = dict(output.headers)
    if headers.get("dl_sealed") == b"1":
        return output
    headers["dl_sealed"] = b"1"
    headers["dl_key"] = base64.b64encode(seal(key, output.key))  # headers are read as text
    # the same record again (a replay, a file sent twice) is the same letter
    place = hashlib.sha256(output.key + b"\x1f" + output.value).hexdigest()
    letter = letter_key(key, "streams", place).encode()
    return Output(output.topic, letter, seal(key, output.value), tuple(headers.items()))


DECODE_CACHE = 16384  # decoded records a worker keeps (about 2 KB each: some 30 MB)


def decoder(catalog: Catalog, subject: str) -> Callable[[bytes], dict[str, Any]]:
    """``catalog.decode`` for one subject, remembering the last ``DECODE_CACHE`` records.

    One per catalog and subject: the stages a worker builds share one catalog
    (:func:`~wijkhub.streams.harness.build_stages`), so a raw event the person stage decoded
    is not decoded again when the address and household stages read it inside their
    wrappers a batch or two later, nor when a relink of a building reads every event it
    holds, or a residency send every registration. Decoding is the largest single cost of
    a stage (fastavro, about 20 µs a record), and the result is a function of the bytes.
    The records it returns are shared: never change one in place (copy what you change:
    ``{**raw, "subject": {**raw["subject"], "match": None}}``)."""
    cached = _DECODERS.setdefault(catalog, {})
    if subject not in cached:

        @functools.lru_cache(maxsize=DECODE_CACHE)
        def decode(value: bytes) -> dict[str, Any]:
            return catalog.decode(value, subject)

        cached[subject] = decode
    return cached[subject]


# per catalog (weakly: a catalog that is gone takes its records with it)
_DECODERS: weakref.WeakKeyDictionary[Catalog, dict[str, Callable[[bytes], dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


def pack(value: bytes) -> str:
    """Bytes as they are kept in a JSON state (the tables' value format): base64, by
    ``binascii`` itself (``base64.b64encode`` wraps it in Python: a cost per output)."""
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def unpack(text: str) -> bytes:
    return binascii.a2b_base64(text)


def version(raw: dict[str, Any]) -> tuple[float, str]:
    """(received_at, content digest) of a raw event. The same event id with the same content
    is a replay: nothing changes. With other content it is a source's correction, and the
    copy the connector received last wins — a function of the set of copies, not of the
    order they arrive in (an old file ingested again is, by its receipt, the latest copy)."""
    env = raw["envelope"]
    content = digest([{**env, "received_at": None}, raw["subject"], raw["payload"]])
    return env["received_at"].timestamp(), content


def supersedes(known: Mapping[str, Any] | None, received: float, content: str) -> bool:
    """Whether a copy (received, content) replaces the ``known`` one (see :func:`version`).

    ``known``: a stored fact of any stage's state, with its ``received`` and ``content``
    (a fact stored before those were kept has neither)."""
    if known is None:
        return True
    if known.get("content") == content:
        return False
    return (received, content) > (known.get("received", 0.0), known.get("content", ""))


def digest(value: Any) -> str:
    """A stable digest of JSON-ready data: what was published, to diff against.

    orjson with sorted keys: a tenth of ``json.dumps``' time, and a stage computes a
    digest for every fact it receives and every output it might send. Other types than
    JSON's (a Decimal) are written as ``str`` gives them, dates and times as ISO 8601."""
    return hashlib.sha256(orjson.dumps(value, default=str, option=_DIGEST)).hexdigest()[:32]


_DIGEST = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


# -- the checkpoint: what a batch writes, and in which order ---------------------------------


class PlainOutput(TypedDict):
    """An :class:`Output` as an outbox keeps it in the JSON state (bytes packed)."""

    topic: str
    key: str
    value: str | None
    headers: list[list[str]]  # [name, packed value] pairs (JSON has no tuples)


class Entry(TypedDict, Generic[S]):
    """What a stage's table stores per key: the state, and the outputs not yet acknowledged."""

    state: S
    outbox: list[PlainOutput]
    # the outbox carries an erased person's data: once delivered, written away (Plan, 3.)
    purge: NotRequired[bool]


@dataclass
class Plan(Generic[S]):
    """What one batch of one stage must do, in this order (the one ordering guarantee):

    1. ``writes``: store every touched key's new state *with its outbox* (the outputs it is
       about to send), and make those writes durable (the changelog flushed);
    2. ``outputs``: send every output — outboxes left over from a batch that crashed after
       step 1, then this batch's — and wait until Kafka acknowledged them all;
    3. ``purges``: the keys of an erasure written again with an empty outbox, durably
       like 1 (its outbox carries the person's registration to every building, and a
       leftover outbox their earlier records: neither may stay in the store or the
       changelog once delivered, AVG art. 17); then ``clears``: those keys' outboxes are
       delivered: remembered in memory (:class:`Delivered`), not written again (a second
       write per key and batch cost more than anything else in the checkpoint; an outbox
       a restarted worker, or a store recovered from the changelog, sends once more is
       absorbed by its receivers);
    4. commit the input offsets.

    A crash before 1 leaves nothing behind: the batch comes again. A crash after 1 leaves
    the outbox in the durable state: when the batch comes again its facts are known, so
    it changes nothing, and the outbox is sent (again). Nothing a stage decided is ever
    lost, and nothing is sent that the state does not know about (no orphan to withdraw).
    The Faust adapter and the in-memory harness both execute plans.
    """

    writes: dict[bytes, Entry[S]] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    clears: dict[bytes, Entry[S]] = field(default_factory=dict)
    purges: dict[bytes, Entry[S]] = field(default_factory=dict)
    results: list[Result[S]] = field(default_factory=list)


def plan(
    stage: Stage[S], stored: Mapping[bytes, Entry[S]], batch: dict[bytes, list[Message]]
) -> Plan[S]:
    """Run ``stage`` over a batch grouped by key; ``stored``: each key's stored entry."""
    result_plan: Plan[S] = Plan()
    for key, messages in batch.items():
        entry = stored.get(key)
        state = entry["state"] if entry is not None else stage.new_state()
        leftover = list(entry["outbox"]) if entry is not None else []
        purging = bool(entry is not None and leftover and entry.get("purge"))
        try:
            result = stage.process(state, messages)
        except Exception as exc:  # a bug meets this input: its records, not the worker, stop
            letters = [dead_letter(stage.name, m, "stage-error", type(exc).__name__)
                       for m in messages]  # fmt: skip
            result_plan.results.append(Result(state, letters))
            result_plan.outputs += [_output(o) for o in leftover] + letters
            continue  # the stored entry stays as it was (its outbox is sent again later)
        result_plan.results.append(result)
        result_plan.outputs += [_output(o) for o in leftover]
        if result.dirty:  # the outbox keeps what a crashed batch had not sent yet
            outbox = leftover + [_plain_output(o) for o in result.outputs]
            purging |= result.purge and bool(outbox)
            written: Entry[S] = {"state": result.state, "outbox": outbox}
            result_plan.writes[key] = {**written, "purge": True} if purging else written
            if outbox:
                result_plan.clears[key] = {"state": result.state, "outbox": []}
        elif leftover:
            result_plan.clears[key] = {"state": state, "outbox": []}
        if purging:  # also when a crash came between its step 1 and 3: it is in the entry
            result_plan.purges[key] = result_plan.clears[key]
        result_plan.outputs += result.outputs
    return result_plan


class Delivered:
    """Step 3 of :class:`Plan`, in memory: the stored entries whose outbox this process saw
    acknowledged, each known by a fingerprint of its stored bytes.

    Writing each such key again with an empty outbox cost a second JSON encoding and store
    write per touched key and batch (measured: 5 % of a worker's samples). The same bytes
    hold the same outbox, whoever wrote them (another worker, a changelog recovery), so an
    entry read back with a known fingerprint has nothing left to send, and one with any
    other bytes sends its outbox. A restart forgets everything, and a key past ``limit``
    is forgotten: its last outbox is sent once more at its next touch, as after a
    changelog recovery: records identical to acknowledged ones, which receivers absorb
    (ADR 0001, 0003)."""

    def __init__(self, limit: int = 250_000) -> None:
        self.limit = limit  # keys remembered: about 200 bytes each
        self._marks: dict[bytes, bytes] = {}

    def entry(self, key: bytes, stored: bytes) -> Entry[Any]:
        """The stored entry of ``key``, its outbox empty when it was delivered."""
        entry: Entry[Any] = orjson.loads(stored)
        mark = self._marks.get(key)
        if entry["outbox"] and mark is not None and mark == _fingerprint(stored):
            entry["outbox"] = []
        return entry

    def mark(self, key: bytes, stored: bytes) -> None:
        """Every output in the entry now stored for ``key`` (``stored``) is acknowledged."""
        self._marks.pop(key, None)  # the newest mark last: the oldest is forgotten first
        self._marks[key] = _fingerprint(stored)
        if len(self._marks) > self.limit:
            del self._marks[next(iter(self._marks))]


def _fingerprint(stored: bytes) -> bytes:
    return hashlib.blake2b(stored, digest_size=16).digest()


def _plain_output(o: Output) -> PlainOutput:
    value = None if o.value is None else pack(o.value)
    return {"topic": o.topic, "key": pack(o.key), "value": value,
            "headers": [[k, pack(v)] for k, v in o.headers]}  # fmt: skip


def _output(d: PlainOutput) -> Output:
    value = None if d["value"] is None else unpack(d["value"])
    return Output(
        d["topic"], unpack(d["key"]), value, tuple((k, unpack(v)) for k, v in d["headers"])
    )
