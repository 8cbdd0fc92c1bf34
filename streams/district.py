"""District (CBS buurt) of an address, from the yearly CBS postcode-huisnummer table.

CBS publishes ``pc6hnr<year>0801_gwb.csv`` every year: one line per address,
``PC6;Huisnummer;Buurt<year>;Wijk<year>;Gemeente<year>``, codes without their
prefix or leading zeros. The full table has every Dutch address, so only the
configured municipality's lines are kept in memory. The table's year travels
with every district, because buurt boundaries change between years.

Lookup is by postcode + huisnummer; a postcode whose addresses all lie in one
buurt gives that buurt for a house number the table does not list (new
construction). An address known only by its BAG id gets no district here.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

_ADDRESS = re.compile(r"^([1-9][0-9]{3}[A-Z]{2})-([0-9]+)")
_YEAR = re.compile(r"(\d{4})$")


class DistrictTableError(ValueError):
    """The CBS file is missing or not in the published layout."""


@dataclass(frozen=True)
class District:
    buurt: str  # BU + gemeente (4) + wijk (2) + buurt (2)
    wijk: str  # WK + gemeente (4) + wijk (2)
    gemeente: str  # GM + gemeente (4)
    year: int

    def as_record(self) -> dict[str, object]:
        return {"buurt": self.buurt, "wijk": self.wijk, "gemeente": self.gemeente,
                "year": self.year}  # fmt: skip


@dataclass
class DistrictTable:
    year: int
    by_address: dict[tuple[str, int], District] = field(default_factory=dict)
    by_postcode: dict[str, District | None] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, municipality: str | None = None) -> DistrictTable:
        """Read a CBS pc6hnr file, keeping one municipality's addresses (all if None)."""
        try:
            handle = path.open(newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise DistrictTableError(f"cannot read the CBS district table {path}: {exc}") from None
        with handle:
            reader = csv.reader(handle, delimiter=";")
            header = next(reader, [])
            if len(header) != 5 or header[0].strip().upper() != "PC6":
                raise DistrictTableError(
                    f"{path.name}: expected the CBS header PC6;Huisnummer;Buurt<year>;"
                    f"Wijk<year>;Gemeente<year>, got {';'.join(header)[:80]!r}"
                )
            year_match = _YEAR.search(header[2].strip())
            if not year_match:
                raise DistrictTableError(f"{path.name}: no year in column {header[2]!r}")
            table = cls(int(year_match.group(1)))
            wanted = int(municipality) if municipality else None
            for n, row in enumerate(reader, 2):
                try:
                    pc6, number, buurt, wijk, gemeente = (v.strip() for v in row)
                    if wanted is not None and int(gemeente) != wanted:
                        continue
                    district = District(f"BU{int(buurt):08d}", f"WK{int(wijk):06d}",
                                        f"GM{int(gemeente):04d}", table.year)  # fmt: skip
                    table._add(pc6.upper(), int(number), district)
                except ValueError:
                    raise DistrictTableError(f"{path.name}:{n}: not a CBS line") from None
        return table

    def _add(self, pc6: str, number: int, district: District) -> None:
        self.by_address[(pc6, number)] = district
        if pc6 not in self.by_postcode:
            self.by_postcode[pc6] = district
        elif self.by_postcode[pc6] != district:
            self.by_postcode[pc6] = None  # the postcode spans buurten: only exact lookups

    def lookup(self, address_ref: str | None) -> District | None:
        found = _ADDRESS.match(address_ref or "")
        if not found:
            return None
        pc6, number = found.group(1), int(found.group(2))
        return self.by_address.get((pc6, number)) or self.by_postcode.get(pc6)
