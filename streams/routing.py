"""Route a household to the wijkteam responsible for its district.

Walking-skeleton routing by postcode area (PC4 ranges), configurable with
``WIJKHUB_TEAM_AREAS`` (``team=1000-1049,team2=1050-1099``). Issue #5 replaces
this with CBS buurt codes. A household whose area no team covers goes to the
``hand-over`` queue, never to a guessed team.
"""

from __future__ import annotations

from dataclasses import dataclass

UNROUTED = "hand-over"


@dataclass(frozen=True)
class Router:
    areas: tuple[tuple[str, int, int], ...]

    @classmethod
    def parse(cls, spec: str) -> Router:
        areas = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            try:
                team, span = part.split("=")
                low, high = (int(x) for x in span.split("-"))
            except ValueError:
                raise ValueError(f"team area {part!r} is not of the form team=1000-1049") from None
            areas.append((team.strip(), low, high))
        return cls(tuple(areas))

    def team_for(self, address_ref: str | None) -> str:
        if not address_ref or not address_ref[:4].isdigit():
            return UNROUTED
        pc4 = int(address_ref[:4])
        for team, low, high in self.areas:
            if low <= pc4 <= high:
                return team
        return UNROUTED
