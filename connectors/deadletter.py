"""Dead letters: the original bytes and a reason, so nothing is ever dropped.

A dead letter from a connector may hold a clear BSN (it is the source's own
bytes), and no topic may: those bytes are sealed with AES-256-GCM under the
dead-letter key before they are written. An operator with the key can unseal
and replay them; everybody else sees only the reason.
Reasons are fixed texts chosen by the code, never quoted input.

A connector's dead letter is keyed by *where* the record was (source, input,
index), through an HMAC under the same secret: the same input ingested again
(a retry, a re-run after a crash) gives its dead letters the same keys, so a
reader that takes the latest record per key sees each bad record once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_PREFIX = b"WHDL1"
NONCE_BYTES = 12
KEY_PREFIX = "DL-"


def _aead(key: bytes) -> AESGCM:
    # The setting is a passphrase-like secret; derive a 256-bit key from it.
    return AESGCM(hashlib.sha256(b"wijkhub-dead-letter:" + key).digest())


def seal(key: bytes, data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return SEALED_PREFIX + nonce + _aead(key).encrypt(nonce, data, SEALED_PREFIX)


def unseal(key: bytes, sealed: bytes) -> bytes:
    if not sealed.startswith(SEALED_PREFIX):
        raise ValueError("not a sealed dead letter")
    body = sealed[len(SEALED_PREFIX) :]
    return _aead(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], SEALED_PREFIX)


def content_id(data: bytes) -> str:
    """An input (a file, a request body, a message) identified by its bytes, so a re-sent
    input is the same input whatever it is called. Only an input to :func:`letter_key`:
    a bare hash of a one-row input holding a BSN is reversed by trying every BSN."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def letter_key(key: bytes, source: str, place: str) -> str:
    """The Kafka key of a connector's dead letter: an HMAC of the source and the record's
    place (input identity + record index), never of the record's content.

    Deterministic, so re-ingesting an input adds no second dead letter for a
    reader that keeps the latest per key; keyed (a sub-key of the dead-letter
    key), so the key tells nothing to whoever lacks the secret. Base32, so no
    run of nine digits for the log masking to hide.
    """
    mac_key = hashlib.sha256(b"wijkhub-dead-letter-key:" + key).digest()
    mac = hmac.new(mac_key, f"{source}\x1f{place}".encode(), hashlib.sha256).digest()
    return KEY_PREFIX + base64.b32encode(mac[:20]).decode().lower()


def distinct_count(keys: Iterable[bytes | None]) -> int:
    """Dead letters on a topic as a reader that takes the latest per key sees them: each
    dead-letter key once; records from before keyed dead letters (key: the source) each."""
    keyed: set[bytes] = set()
    other = 0
    for k in keys:
        if k is not None and k.startswith(KEY_PREFIX.encode()):
            keyed.add(k)
        else:
            other += 1
    return len(keyed) + other


@dataclass(frozen=True)
class DeadLetter:
    """One input that could not be processed, as it goes onto a dlq.<stage> topic."""

    stage: str
    reason_code: str
    reason: str
    source: str
    original: bytes
    sealed: bool = False
    origin: str = ""  # topic/partition/offset or file:line of the original

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("dl_stage", self.stage.encode()),
            ("dl_reason_code", self.reason_code.encode()),
            ("dl_reason", self.reason.encode()),
            ("dl_source", self.source.encode()),
            ("dl_sealed", b"1" if self.sealed else b"0"),
            ("dl_origin", self.origin.encode()),
            ("dl_at", str(int(time.time() * 1000)).encode()),
        ]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]], value: bytes) -> DeadLetter:
        h = {k: v.decode() for k, v in headers}
        return cls(
            stage=h.get("dl_stage", ""),
            reason_code=h.get("dl_reason_code", ""),
            reason=h.get("dl_reason", ""),
            source=h.get("dl_source", ""),
            original=value,
            sealed=h.get("dl_sealed") == "1",
            origin=h.get("dl_origin", ""),
        )
