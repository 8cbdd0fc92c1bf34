"""Authentic team actions: the inbox signs every AlertAction, the household stage checks it.

Write access to ``alert-actions`` is limited by ACLs to the inbox and the worker,
but a record is not trusted because of the topic it came on: an action counts only
with a valid HMAC-SHA256 under a key that only the inbox and the worker hold
(``WIJKHUB_ACTION_KEYS``: ``key-id=secret,…``, the first signs, all verify). The
inbox signs after it checked that the member belongs to the alert's team, so the
signed ``team`` and ``actor`` are what the household stage relies on. Key ids make
rotation possible: add the new key first, keep the old one for verification as long
as ``alert-actions`` keeps records signed with it (a replay reads them again).

Pure: no Kafka.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wijkhub.settings import SettingsError

MIN_KEY_LENGTH = 32
SIGNED_FIELDS = ("action_id", "alert_id", "household_ref", "action", "outcome", "actor", "team",
                 "at", "correlation_id")  # fmt: skip

# AlertAction v3's fields: signed after the others when an action has any of them, so an
# action signed before them keeps its signature and none can be stripped unnoticed.
SIGNED_IF_PRESENT = ("contact_kind", "contact_on", "day_part", "reached", "end_result")

SIGNATURE_VERSION = "wijkhub-alert-action-v1"
UNSIGNED = "action-unsigned"
UNKNOWN_KEY = "action-key-unknown"  # signed under a key this hub does not (or no longer) hold
FORGED = "action-forged"


class ActionKeyError(SettingsError):
    """``WIJKHUB_ACTION_KEYS`` is missing or malformed (the message names no secret)."""


@dataclass(frozen=True)
class ActionKeys:
    """Signing keys by key id; ``current`` signs."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    @classmethod
    def verifying_nothing(cls) -> ActionKeys:
        """No key: every action is refused (``wijkhub rules backtest`` without the keys: its
        report then shows the team actions as dead letters instead of trusting them)."""
        return cls("", {})

    @classmethod
    def parse(cls, text: str) -> ActionKeys:
        """``key-id=secret,…``: every secret at least 32 characters; the first one signs."""
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            kid, sep, secret = item.partition("=")
            if not sep or not kid.strip() or len(secret.strip()) < MIN_KEY_LENGTH:
                raise ActionKeyError(
                    "WIJKHUB_ACTION_KEYS must be key-id=secret pairs, each secret at least "
                    f"{MIN_KEY_LENGTH} characters"
                )
            keys[kid.strip()] = secret.strip().encode()
        if not keys:
            raise ActionKeyError("WIJKHUB_ACTION_KEYS is not set: the inbox and the worker "
                                 "need the key that signs team actions")  # fmt: skip
        return cls(next(iter(keys)), keys)

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """The AlertAction with ``key_id`` and ``signature`` under the current key."""
        if not self.current:
            raise ActionKeyError("no key to sign team actions with: set WIJKHUB_ACTION_KEYS")
        mac = _mac(self.keys[self.current], record)
        return {**record, "key_id": self.current, "signature": mac}

    def refusal(self, record: Mapping[str, Any]) -> tuple[str, str] | None:
        """(code, reason) when the action is not authentic; None when it is."""
        kid, signature = record.get("key_id"), record.get("signature")
        if not kid or not signature:
            return UNSIGNED, "the action carries no signature"
        key = self.keys.get(kid)
        if key is None:
            return UNKNOWN_KEY, "the action is signed under a key id this hub does not hold"
        if not hmac.compare_digest(_mac(key, record), signature):
            return FORGED, "the action's signature does not match its content"
        return None


def _mac(key: bytes, record: Mapping[str, Any]) -> str:
    """HMAC over a canonical JSON array (a version tag, then every signed field, null as
    null): no separator a free-text field could imitate, no None that equals ""."""
    values: list[Any] = [SIGNATURE_VERSION]
    for name in SIGNED_FIELDS:
        value = record.get(name)
        values.append(int(value.timestamp() * 1000) if isinstance(value, dt.datetime) else value)
    if any(record.get(name) is not None for name in SIGNED_IF_PRESENT):
        values.extend(record.get(name) for name in SIGNED_IF_PRESENT)
    text = json.dumps(values, ensure_ascii=True, separators=(",", ":"))
    digest = hmac.new(key, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
