"""Dead letters: the original bytes and a reason, so nothing is ever dropped.

A dead letter from a connector may hold a clear BSN (it is the source's own
bytes), and no topic may: those bytes are sealed with AES-256-GCM under the
dead-letter key before they are written. An operator with the key can unseal
and replay them (``wijkhub dlq``); everybody else sees only the reason.
Reasons are fixed texts chosen by the code, never quoted input.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_PREFIX = b"WHDL1"
NONCE_BYTES = 12


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
