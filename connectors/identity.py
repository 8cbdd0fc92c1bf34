"""BSN validation, pseudonymisation and address references: the privacy boundary.

A clear BSN exists only inside a connector, between parsing the source bytes
and calling :meth:`Pseudonymiser.person_ref`. Everything downstream sees the
keyed pseudonym. Error messages here never quote the BSN they reject.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field


class InvalidInput(ValueError):
    """Input that cannot become an event. The message is safe to log and store."""


def bsn_is_valid(bsn: str) -> bool:
    """The elfproef for a BSN: 9 digits, weights 9..2 and -1, sum divisible by 11.

    An 8-digit BSN is padded with a leading zero, as the BRP does.
    """
    if not bsn.isdigit() or len(bsn) not in (8, 9):
        return False
    digits = bsn.zfill(9)
    if digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    total -= int(digits[8])
    return total % 11 == 0


@dataclass(frozen=True)
class Pseudonymiser:
    """HMAC-SHA256 under the municipality's secret key.

    Keyed, so nobody without the key can test a guessed BSN against a
    pseudonym (a plain hash of 9 digits is reversed in seconds). A reference names
    the key it was made with (``P1-…``): after a key rotation (a rebuild, see the
    README) old and new references can never be mistaken for each other.
    """

    key: bytes = field(repr=False)
    key_id: str = "1"

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise ValueError("the pseudonymisation key must be at least 32 bytes")
        if not re.fullmatch(r"[0-9A-Za-z]{1,8}", self.key_id):
            raise ValueError("the pseudonymisation key id must be 1-8 letters or digits")

    def person_ref(self, bsn: str) -> str:
        bsn = bsn.strip()
        if not bsn_is_valid(bsn):
            raise InvalidInput("BSN fails the elfproef or is not 8-9 digits")
        digest = hmac.new(self.key, b"bsn:" + bsn.zfill(9).encode(), hashlib.sha256)
        return f"P{self.key_id}-" + digest.hexdigest()[:32]

    def keyed(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the key: the base of every id a connector derives
        from source content (event ids, row ids), so none is a bare, reversible hash."""
        return hmac.new(self.key, data, hashlib.sha256).digest()

    def content_ref(self, data: bytes) -> str:
        """A source row's identity when it carries no message id: keyed like a person_ref,
        so nobody without the key can test a guessed row (with a BSN in it) against it."""
        return "R-" + hmac.new(self.key, b"row:" + data, hashlib.sha256).hexdigest()[:32]


_POSTCODE = re.compile(r"^\s*([1-9][0-9]{3})\s*([A-Za-z]{2})\s*$")
# huisnummer, huisletter (one letter, not the start of a word like "bis"), toevoeging
_HOUSE = re.compile(
    r"^\s*([0-9]{1,5})\s*(?:[-\s]?\s*([A-Za-z])(?![A-Za-z]))?\s*[-\s/]?\s*([A-Za-z0-9]{0,4})\s*$"
)
# "Hoofdstr. 12-a", "Hoofdstraat 12 A", "Laan van Meerdervoort 1234 bis"
_STREET_AND_HOUSE = re.compile(r"^\s*(.*?[^\d\s])\.?\s+(\d{1,5}\b.*)$")
STREET_ABBREVIATIONS = {"str": "straat", "ln": "laan", "pl": "plein", "gr": "gracht",
                        "kd": "kade", "wg": "weg", "sngl": "singel"}  # fmt: skip
_BAG_ID = re.compile(r"^[0-9]{16}$")


def address_ref(
    postcode: str | None = None, house: str | None = None, bag_id: str | None = None
) -> str:
    """A stable address key: ``1234AB-12-A-2``, else ``BAG-`` + the nummeraanduiding id.

    Postcode and house number are normalised ("1234 ab" == "1234AB",
    "12-a" == "12 A"), so the same door gives the same key from every source.
    They win over a BAG id: creditors and care systems only know the postcode
    form, and a BRP record keyed by its BAG id would put the residents on a
    different key than the signals for the same door. The BAG id is the key
    only for a record without postcode and house number; a record that has
    them but malformed is refused rather than silently keyed otherwise.
    """
    if bag_id and not (postcode and house):
        bag_id = bag_id.strip()
        if not _BAG_ID.match(bag_id):
            raise InvalidInput("BAG nummeraanduiding id must be 16 digits")
        return "BAG-" + bag_id
    pc = _POSTCODE.match(postcode or "")
    if not pc:
        raise InvalidInput("postcode is missing or not of the form 1234AB")
    hn = _HOUSE.match(house or "")
    if not hn:
        raise InvalidInput("house number is missing or malformed")
    number, letter, addition = hn.groups()
    letter = letter or ""
    parts = [pc.group(1) + pc.group(2).upper(), str(int(number))]
    if letter or addition:
        parts += [letter.upper(), addition.upper()]
    return "-".join(parts).rstrip("-")


def split_street(text: str | None) -> tuple[str, str] | None:
    """("hoofdstraat", "12-a") from "Hoofdstr. 12-a": one address line as street and number.

    Abbreviated street types are written out, so "Hoofdstr." and
    "Hoofdstraat" compare equal; None if the line has no house number.
    """
    found = _STREET_AND_HOUSE.match(text or "")
    if not found:
        return None
    words = found.group(1).lower().replace(".", " ").split()
    if words:
        for short, full in STREET_ABBREVIATIONS.items():
            if words[-1].endswith(short) and len(words[-1]) > len(short):
                words[-1] = words[-1][: -len(short)] + full
                break
    return " ".join(words), found.group(2).strip()
