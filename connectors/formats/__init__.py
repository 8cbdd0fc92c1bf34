"""Source formats: bytes in, :class:`Item` per record out. One entry point per source.

| source | formats | default kind |
|---|---|---|
| ``ijw`` | iJw 3.2 XML: JW301, JW305, JW307, JW315 | from the message |
| ``iwmo`` | iWmo 3.2 XML: WMO301, WMO305, WMO307, WMO315 | from the message |
| ``income`` | CSV, JSON | ``benefit_changed`` |
| ``vroegsignalering`` | DDAS JSON exchange model, DDAS CSV, canonical JSON | ``arrears_signal`` |
| ``schuldhulp`` | CSV, JSON | ``debt_help_changed`` |
| ``population`` | CSV, JSON; canonical or Haal Centraal BRP names (``columns.py``) | — |
| ``teams`` | JSON, CSV; canonical or ZGW Zaken names (``columns.py``) | — |
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

from wijkhub.connectors.formats import istandaarden, tabular
from wijkhub.connectors.formats.base import Item

SOURCES: dict[str, str | None] = {
    "ijw": None,
    "iwmo": None,
    "income": "benefit_changed",
    "vroegsignalering": "arrears_signal",
    "schuldhulp": "debt_help_changed",
    "population": None,
    "teams": None,
}


class UnknownSource(ValueError):
    pass


def parse(source: str, data: bytes, origin: str) -> Iterator[Item]:
    """Parse one input (a file, a request body, a Kafka record) of ``source``.

    Whatever the bytes hold, every record ends as an item: should a parser fail
    part-way (a case no format check foresaw), the rest of the input becomes one
    more item with the reason, so ``read = events + dead letters`` still holds
    and no intake path answers 500 or crashes on it.
    """
    if source not in SOURCES:
        raise UnknownSource(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    try:
        yield from _parse(source, data, origin)
    except Exception as exc:  # the input, not the hub, is at fault
        yield Item(data, origin, error=f"input could not be parsed ({type(exc).__name__})")


def _parse(source: str, data: bytes, origin: str) -> Iterator[Item]:
    """Dispatch on the source and the first byte (a UTF-8 byte-order mark is skipped)."""
    data = data.removeprefix(codecs.BOM_UTF8)
    if not data.strip():
        yield Item(data, origin, error="empty input")
        return
    if source in ("ijw", "iwmo"):
        yield from istandaarden.parse(data, origin, expect=source)
        return
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        yield from tabular.parse_json(data, origin, SOURCES[source], source)
    else:
        yield from tabular.parse_csv(data, origin, SOURCES[source], source)


__all__ = ["SOURCES", "Item", "UnknownSource", "parse"]
