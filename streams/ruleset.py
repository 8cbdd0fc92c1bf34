"""Detection rules as data: load ``rules.yaml``, validate it, build the rules.

The engine, not the rule author, decides what a rule may do: every rule must
name its legal basis and the data classes it reads, use a condition the hub
knows, with parameters of the right type, and a window that makes sense.
A file that fails any check is refused as a whole, with every problem listed,
before a worker reads a single event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from wijkhub.streams.rules import CONDITIONS, DUPLICATE_HELP, EARLY_DETECTION, SEVERITIES, Rule
from wijkhub.streams.topics import Domain

RULES_FILE = Path(__file__).with_name("rules.yaml")
FAMILIES = (EARLY_DETECTION, DUPLICATE_HELP)
MAX_WINDOW_DAYS = 730  # the raw topics keep two years at most
MAX_DUPLICATE_HELP_DAYS = 730  # verwijsindex practice: a match ends after two years at most
REQUIRED = ("id", "version", "family", "description", "legal_basis", "contact_basis", "reads",
            "window_days", "condition", "severity", "dedup")  # fmt: skip


class RuleFileError(ValueError):
    """The rules file is not valid; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str


def _check_rule(n: int, raw: Any, seen: set[str]) -> list[str]:
    if not isinstance(raw, dict):
        return [f"rule {n}: must be a mapping"]
    where = f"rule {raw.get('id') or n}"
    problems = [f"{where}: {key} is missing" for key in REQUIRED if raw.get(key) in (None, "")]
    if problems:
        return problems
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9-]{2,63}", str(raw["id"])):
        problems.append(f"{where}: id must be upper case letters, digits and dashes")
    if raw["id"] in seen:
        problems.append(f"{where}: duplicate id")
    seen.add(raw["id"])
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        problems.append(f"{where}: version must be a whole number ≥ 1")
    if raw["family"] not in FAMILIES:
        problems.append(f"{where}: unknown family {raw['family']!r}; expected {FAMILIES}")
    if not isinstance(raw["contact_basis"], str):
        problems.append(f"{where}: contact_basis must be text: the law and article that allow "
                        "showing the persons' contact data to the responsible team")  # fmt: skip
    basis = raw["legal_basis"]
    if not isinstance(basis, dict) or not basis.get("law") or not basis.get("article"):
        problems.append(f"{where}: legal_basis needs both law and article")
        basis = {}
    domains = {d.value for d in Domain}
    reads = raw["reads"] if isinstance(raw["reads"], list) else [raw["reads"]]
    listed = basis.get("covers")
    covers = listed if isinstance(listed, list) else None
    unknown = [d for d in [*reads, *(covers or [])] if d not in domains]
    if unknown:
        problems.append(f"{where}: unknown domain(s) {unknown}; expected {sorted(domains)}")
    if basis and covers is None:
        problems.append(f"{where}: legal_basis needs covers: the domains the basis allows")
    elif (
        basis and covers is not None and set(reads) - set(covers) and not raw.get("consent_purpose")
    ):
        extra = sorted(set(reads) - set(covers))
        problems.append(
            f"{where}: reads {extra} beyond its legal basis; name the consent_purpose under "
            "which people can allow it, or drop those domains"
        )
    window = raw["window_days"]
    if not isinstance(window, int) or not 1 <= window <= MAX_WINDOW_DAYS:
        problems.append(
            f"{where}: window_days must be from 1 to {MAX_WINDOW_DAYS} days, got {window!r}"
        )
    if raw["severity"] not in SEVERITIES:
        problems.append(f"{where}: unknown severity {raw['severity']!r}; expected {SEVERITIES}")
    if not isinstance(raw.get("auto_resolve", False), bool):
        problems.append(f"{where}: auto_resolve must be true or false")
    cooldown = raw.get("cooldown_days", 30)
    if not isinstance(cooldown, int) or not 0 <= cooldown <= MAX_WINDOW_DAYS:
        problems.append(f"{where}: cooldown_days must be from 0 to {MAX_WINDOW_DAYS}")
    problems += _check_escalate(where, raw)
    expires = raw.get("expires_after_days")
    if (
        raw["family"] == DUPLICATE_HELP
        and expires is not None
        and (not isinstance(expires, int) or not 1 <= expires <= MAX_DUPLICATE_HELP_DAYS)
    ):
        problems.append(
            f"{where}: expires_after_days must be from 1 to {MAX_DUPLICATE_HELP_DAYS} "
            "(a duplicate-help alert ends after two years at most)"
        )
    condition_problems = _check_condition(where, raw["condition"])
    problems += condition_problems
    if not condition_problems and raw["dedup"] not in CONDITIONS[raw["condition"]["type"]].dedups:
        dedups = CONDITIONS[raw["condition"]["type"]].dedups
        problems.append(f"{where}: dedup {raw['dedup']!r} does not fit condition "
                        f"{raw['condition']['type']}; expected one of {dedups}")  # fmt: skip
    return problems


def _check_escalate(where: str, raw: dict[str, Any]) -> list[str]:
    escalate = raw.get("escalate")
    if escalate is None:
        return []
    if not isinstance(escalate, dict) or not isinstance(escalate.get("min_facts"), int):
        return [f"{where}: escalate needs min_facts (a whole number) and severity"]
    severity = escalate.get("severity")
    if severity not in SEVERITIES:
        return [f"{where}: unknown escalate severity {severity!r}; expected {SEVERITIES}"]
    if raw["severity"] in SEVERITIES and (
        SEVERITIES.index(severity) <= SEVERITIES.index(raw["severity"])
    ):
        return [f"{where}: escalate severity must be higher than {raw['severity']}"]
    return []


def _check_condition(where: str, condition: Any) -> list[str]:
    if not isinstance(condition, dict) or condition.get("type") not in CONDITIONS:
        kind = condition.get("type") if isinstance(condition, dict) else condition
        return [f"{where}: unknown condition {kind!r}; expected one of {sorted(CONDITIONS)}"]
    spec = CONDITIONS[condition["type"]].parameters
    problems = []
    for name, value in condition.items():
        if name == "type":
            continue
        if name not in spec:
            problems.append(f"{where}: condition {condition['type']} has no parameter {name!r}")
        elif not isinstance(value, spec[name]):
            problems.append(f"{where}: {name} must be {spec[name].__name__}")
    missing = [p for p in spec if p not in condition]
    if missing:
        problems.append(f"{where}: condition {condition['type']} needs {missing}")
    return problems


def _build(raw: dict[str, Any]) -> Rule:
    condition = dict(raw["condition"])
    kind = CONDITIONS[condition.pop("type")]
    basis = raw["legal_basis"]
    return Rule(
        id=raw["id"],
        version=raw["version"],
        family=raw["family"],
        severity=raw["severity"],
        legal_basis=f"{basis['law']} {basis['article']}",
        summary=raw["description"],
        reads=tuple(raw["reads"] if isinstance(raw["reads"], list) else [raw["reads"]]),
        covers=tuple(basis["covers"]),
        consent_purpose=raw.get("consent_purpose"),
        contact_basis=raw["contact_basis"],
        window_days=raw["window_days"],
        evaluate=partial(kind.function, window_days=raw["window_days"], **condition),
        dedup=raw["dedup"],
        auto_resolve=bool(raw.get("auto_resolve", False)),
        cooldown_days=int(raw.get("cooldown_days", 30)),
        escalate=(raw["escalate"]["min_facts"], raw["escalate"]["severity"])
        if raw.get("escalate")
        else None,
        expires_after_days=raw.get("expires_after_days", MAX_DUPLICATE_HELP_DAYS)
        if raw["family"] == DUPLICATE_HELP
        else None,
    )


def parse(text: str, source: str = "rules") -> RuleSet:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleFileError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise RuleFileError(source, ["needs a non-empty list under 'rules'"])
    seen: set[str] = set()
    problems = [p for n, raw in enumerate(doc["rules"], 1) for p in _check_rule(n, raw, seen)]
    if problems:
        raise RuleFileError(source, problems)
    return RuleSet(tuple(_build(raw) for raw in doc["rules"]), source)


def load(path: Path | str | None = None) -> RuleSet:
    """The rules of ``path`` (default: the shipped ``streams/rules.yaml``), validated."""
    path = Path(path) if path else RULES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(str(path), [f"cannot read: {exc.strerror}"]) from None
    return parse(text, str(path))
