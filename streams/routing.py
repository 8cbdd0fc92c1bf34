"""Route an alert to the team responsible: specialised team, else district, else fallback.

Household address → CBS district (from the pc6hnr table, see :mod:`district`)
→ team, from ``routing.yaml`` (or ``WIJKHUB_ROUTING_FILE``). Teams can be
specialised by rule (a crisis team gets every crisis signal). A household
whose district no team covers goes to the configured fallback team and is
counted, never to a guessed team.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROUTING_FILE = Path(__file__).with_name("routing.yaml")
_CODE = re.compile(r"^(WK\d{6}|BU\d{8})$")


class RoutingError(ValueError):
    """The routing file is not valid; the message lists every reason."""


@dataclass(frozen=True)
class Route:
    team: str
    routed_by: str  # "rule" | "buurt" | "wijk" | "fallback"


@dataclass(frozen=True)
class Router:
    fallback: str
    by_rule: dict[str, str] = field(default_factory=dict)
    by_code: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, source: str = "routing") -> Router:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RoutingError(f"{source}: not valid YAML: {exc}") from None
        problems: list[str] = []
        if not isinstance(doc, dict) or not isinstance(doc.get("fallback"), str):
            raise RoutingError(f"{source}: needs a fallback team")
        by_code: dict[str, str] = {}
        for team, codes in (doc.get("districts") or {}).items():
            for code in codes if isinstance(codes, list) else [codes]:
                if not _CODE.match(str(code)):
                    problems.append(f"{team}: {code!r} is not a CBS wijk (WK+6) or buurt (BU+8)")
                elif code in by_code:
                    problems.append(f"{code} is routed to both {by_code[code]} and {team}")
                else:
                    by_code[code] = team
        by_rule: dict[str, str] = {}
        for entry in doc.get("specialised") or []:
            if not isinstance(entry, dict) or not entry.get("team") or not entry.get("rules"):
                problems.append(f"specialised entry {entry!r} needs team and rules")
                continue
            for rule in entry["rules"]:
                by_rule.setdefault(rule, entry["team"])
        if problems:
            raise RoutingError(f"{source}: " + "; ".join(problems))
        return cls(doc["fallback"], by_rule, by_code)

    @classmethod
    def load(cls, path: Path | str | None = None) -> Router:
        path = Path(path) if path else ROUTING_FILE
        try:
            return cls.parse(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise RoutingError(f"{path}: cannot read: {exc.strerror}") from None

    def route(self, rule_id: str, district: dict[str, Any] | None) -> Route:
        if rule_id in self.by_rule:
            return Route(self.by_rule[rule_id], "rule")
        if district:
            for level in ("buurt", "wijk"):
                team = self.by_code.get(district.get(level) or "")
                if team:
                    return Route(team, level)
        return Route(self.fallback, "fallback")
