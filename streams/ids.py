"""Keyed identifiers: what the hub publishes about a household or an alert.

A household's reference and an alert's id appear in links in e-mails, in webhooks,
on the audit topic and in the inbox. Were they bare hashes of an address, anybody
holding one could recover the address in seconds by hashing every Dutch address
(about nine million). They are HMACs under the hub's id key (``WIJKHUB_ID_KEY``),
so nobody without the key can compute or test one. Inside the worker's own state a
household is known by its internal base (:func:`linking.household_for_address`);
it is keyed where it leaves the address stage.

Pure: no Kafka.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from wijkhub.settings import SettingsError

MIN_KEY_LENGTH = 32
ID_CACHE = 65_536  # ids remembered per key: a household's ref is made for every fact linked


@dataclass(frozen=True)
class Ids:
    """The id key and the ids made with it."""

    key: bytes = field(repr=False)
    _mac_of: Callable[[str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_LENGTH:
            raise SettingsError(
                f"WIJKHUB_ID_KEY must be set to a secret of at least {MIN_KEY_LENGTH} characters"
            )
        # The key schedule once (hmac.new per id was most of its cost), and each id
        # remembered: the same households and people come again and again (issue 19).
        keyed = hmac.new(self.key, digestmod=hashlib.sha256)

        @functools.lru_cache(maxsize=ID_CACHE)
        def mac(message: str) -> str:
            h = keyed.copy()
            h.update(message.encode())
            return h.hexdigest()[:24]

        object.__setattr__(self, "_mac_of", mac)  # frozen: set once, here

    def _mac(self, kind: str, text: str) -> str:
        return self._mac_of(f"{kind}:{text}")

    def household(self, base: str) -> str:
        """The published household_ref of an internal household base."""
        return "H-" + self._mac("household", base)

    def alert(self, rule_id: str, dedup_key: str) -> str:
        """An alert's id: from its rule and dedup key (ADR 0005), keyed."""
        return "A-" + self._mac("alert", f"{rule_id}|{dedup_key}")

    def erased(self, person_ref: str) -> str:
        """What a stage keeps of an erased person to refuse a late copy of their records:
        a keyed digest of the pseudonym, never the pseudonym itself (a scan of the state
        after an erasure finds no trace of the person)."""
        return "E-" + self._mac("erased", person_ref)
