"""Person matching without a BSN: compare, weigh (Fellegi-Sunter), decide.

Creditors send name, date of birth and address but no BSN. A signal is
linked to a known person only when the evidence is strong and unambiguous;
otherwise it goes to review (the ``unmatched`` topic), never to a guess,
because a wrong link sends a family's data to the wrong team.

- :func:`compare` turns a pair of records into a comparison vector: one
  level per field (missing, disagree, partial, agree), with rapidfuzz
  string similarity (Jaro-Winkler, Levenshtein) for names and addresses.
- :class:`Weights` holds the log-likelihood ratio log(m/u) of every level
  of every field and the prior match log-odds. They are *estimated* from
  unlabelled candidate pairs by expectation-maximisation (recordlinkage's
  ECM, see :func:`estimate`), never set by hand; ``link_weights.json`` is
  the estimate shipped with the hub.
- :class:`Matcher` keeps an index of known persons by blocking keys and
  returns a :class:`Decision` for a new record: the best candidate if its
  match probability reaches the threshold and no other candidate comes close.

Pure Python over plain dicts; no Kafka, no pandas at run time.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz.distance import JaroWinkler, Levenshtein

MISSING, DISAGREE, PARTIAL, AGREE = 0, 1, 2, 3
FIELDS = ("family", "given", "initials", "dob", "postcode", "house", "street", "locality")
WEIGHTS_FILE = Path(__file__).with_name("link_weights.json")

Person = dict[str, str]  # normalised attributes, see :func:`normalise`


def _plain(text: Any) -> str:
    """Lower case, accents removed, only letters and digits and single spaces."""
    if text is None:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_text).split())


def _digits(text: Any) -> str:
    return re.sub(r"\D", "", str(text or ""))


def normalise(
    *,
    family: Any = None,
    prefix: Any = None,
    given: Any = None,
    initials: Any = None,
    dob: Any = None,
    postcode: Any = None,
    house: Any = None,
    street: Any = None,
    locality: Any = None,
) -> Person:
    """Matching attributes from whatever a source gives, in one normal form.

    The Dutch voorvoegsel is joined to the surname ("van Dijk" = "vandijk")
    because sources disagree on where it goes; initials are derived from
    given names when only those are known; a date of birth becomes YYYYMMDD.
    """
    given_plain = _plain(given)
    initials_plain = re.sub(r"[^a-z]", "", _plain(initials)) or "".join(
        w[0] for w in given_plain.split()
    )
    dob_digits = _digits(dob)
    house_plain = _plain(house)
    return {
        k: v
        for k, v in {
            "family": (_plain(prefix) + _plain(family)).replace(" ", ""),
            "given": given_plain.split()[0] if given_plain else "",
            "initials": initials_plain,
            "dob": dob_digits if len(dob_digits) == 8 else "",
            "postcode": _plain(postcode).replace(" ", ""),
            "house": house_plain,
            "street": _plain(street),
            "locality": _plain(locality),
        }.items()
        if v
    }


def _strings(a: str, b: str, agree: float, partial: float) -> int:
    score = JaroWinkler.normalized_similarity(a, b)
    return AGREE if score >= agree else PARTIAL if score >= partial else DISAGREE


def _dob(a: str, b: str) -> int:
    if a == b:
        return AGREE
    swapped = a[:4] + a[6:8] + a[4:6]  # day and month swapped
    if swapped == b or Levenshtein.distance(a, b) <= 1:
        return PARTIAL
    return DISAGREE


def _house(a: str, b: str) -> int:
    if a == b:
        return AGREE
    number_a, number_b = a.split(" ")[0], b.split(" ")[0]
    if number_a != number_b:
        return DISAGREE
    if a == number_a or b == number_b:
        return MISSING  # one side gives no letter or toevoeging: no evidence either way
    return PARTIAL  # same number, another letter or toevoeging: another door


def _code(a: str, b: str) -> int:
    if a == b:
        return AGREE
    return PARTIAL if Levenshtein.distance(a, b) <= 1 else DISAGREE


def _initials(a: str, b: str) -> int:
    if a == b:
        return AGREE
    return PARTIAL if a[0] == b[0] else DISAGREE


# Each field's comparator: two normalised values → AGREE, PARTIAL or DISAGREE.
COMPARATORS: dict[str, Callable[[str, str], int]] = {
    "family": lambda a, b: _strings(a, b, 0.95, 0.85),
    "given": lambda a, b: _strings(a, b, 0.95, 0.85),
    "initials": _initials,
    "dob": _dob,
    "postcode": _code,
    "house": _house,
    "street": lambda a, b: _strings(a, b, 0.95, 0.85),
    "locality": lambda a, b: _strings(a, b, 0.95, 0.85),
}


def compare(a: Person, b: Person) -> tuple[int, ...]:
    """One level per field in :data:`FIELDS`; MISSING where either side lacks it."""
    return tuple(COMPARATORS[f](a[f], b[f]) if f in a and f in b else MISSING for f in FIELDS)


@dataclass(frozen=True)
class Weights:
    """log(m/u) per field and level, and the prior log-odds of a candidate pair matching."""

    log_ratio: dict[str, dict[int, float]]
    prior_log_odds: float
    estimated_on: str = ""

    def log_odds(self, vector: tuple[int, ...]) -> float:
        total = self.prior_log_odds
        for f, level in zip(FIELDS, vector, strict=True):
            total += self.log_ratio.get(f, {}).get(level, 0.0)
        return total

    def probability(self, vector: tuple[int, ...]) -> float:
        odds = self.log_odds(vector)
        return 1.0 / (1.0 + math.exp(-odds)) if odds > -700 else 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "estimated_on": self.estimated_on,
                "prior_log_odds": self.prior_log_odds,
                "log_ratio": {
                    f: {str(k): v for k, v in lv.items()} for f, lv in self.log_ratio.items()
                },
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Weights:
        doc = json.loads(text)
        return cls(
            {f: {int(k): float(v) for k, v in lv.items()} for f, lv in doc["log_ratio"].items()},
            float(doc["prior_log_odds"]),
            doc.get("estimated_on", ""),
        )

    @classmethod
    def shipped(cls) -> Weights:
        return cls.from_json(WEIGHTS_FILE.read_text())


def estimate(vectors: Iterable[tuple[int, ...]], estimated_on: str = "") -> Weights:
    """Fellegi-Sunter m/u per level by EM on unlabelled candidate pairs (recordlinkage ECM).

    Each field's levels are one-hot indicators (ECM's binary form, started
    with Jaro's initialisation); the weight of a level is the ECM log weight
    of its indicator being 1 and the others 0. Needs the ``eval`` extra
    (recordlinkage, pandas); the stream processors only read the weights.
    """
    import pandas as pd
    from recordlinkage import ECMClassifier

    # Agreement indicators only, as ECM's Jaro start expects (1 = agrees at that level).
    levels = (PARTIAL, AGREE)
    rows = [
        {f"{f}={lv}": int(v == lv) for f, v in zip(FIELDS, vector, strict=True) for lv in levels}
        for vector in vectors
    ]
    frame = pd.DataFrame(rows).loc[:, lambda df: df.any()]  # drop levels never seen
    ecm = ECMClassifier(binarize=None)
    ecm.fit(frame)
    m, u = ecm.m_probs, ecm.u_probs
    eps = 1e-9

    def one(column: str, is_set: bool) -> float:
        mc, uc = m[column][1], u[column][1]
        if not is_set:
            mc, uc = 1 - mc, 1 - uc
        return math.log(max(mc, eps)) - math.log(max(uc, eps))

    log_ratio: dict[str, dict[int, float]] = {}
    for f in FIELDS:
        columns = [c for c in frame.columns if c.startswith(f + "=")]
        if columns:
            # A missing value is no evidence either way; disagreement is "no indicator set".
            log_ratio[f] = {MISSING: 0.0, DISAGREE: sum(one(c, False) for c in columns)}
            for level in levels:
                log_ratio[f][level] = sum(one(c, c == f"{f}={level}") for c in columns)
    p = float(ecm.p)
    return Weights(log_ratio, math.log(p / (1 - p)), estimated_on)


@dataclass(frozen=True)
class Decision:
    person_ref: str | None  # None: not linked
    probability: float
    reason: str  # "matched", "below-threshold", "ambiguous", "no-candidates"
    candidates: int


# Blocking keys: a candidate must share at least one with the record.
def blocking_keys(p: Person) -> list[str]:
    keys = []
    if "dob" in p:
        keys.append("d:" + p["dob"])
    if "postcode" in p:
        keys.append("p:" + p["postcode"] + ":" + p.get("house", "").split(" ")[0])
    if "family" in p:
        keys.append("f:" + p["family"][:4] + ":" + p.get("initials", "")[:1])
        if "dob" in p:
            keys.append("y:" + p["family"][:2] + p["dob"][:4])
    if "given" in p and "dob" in p:
        keys.append("g:" + p["given"][:3] + p["dob"][4:8])
    if "street" in p and "house" in p:
        keys.append("s:" + p["street"][:5] + ":" + p["house"].split(" ")[0])
    return keys


@dataclass
class Matcher:
    """Known persons by blocking key; decides for one new record at a time (incremental)."""

    weights: Weights
    threshold: float = 0.99
    margin: float = 4.0  # the runner-up must be this many log-odds behind the best
    max_block: int = 500  # a block this large is too common to be evidence
    persons: dict[str, Person] = field(default_factory=dict)
    index: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, ref: str, person: Person) -> None:
        self.remove(ref)
        self.persons[ref] = person
        for key in blocking_keys(person):
            self.index[key].add(ref)

    def remove(self, ref: str) -> None:
        old = self.persons.pop(ref, None)
        if old is not None:
            for key in blocking_keys(old):
                self.index[key].discard(ref)

    def candidates(self, person: Person) -> set[str]:
        found: set[str] = set()
        for key in blocking_keys(person):
            block = self.index.get(key, set())
            if len(block) <= self.max_block:
                found |= block
        return found

    def decide(self, person: Person) -> Decision:
        return decide(
            self.weights, person, self._candidate_items(person), self.threshold, self.margin
        )

    def _candidate_items(self, person: Person) -> Mapping[str, Person]:
        return {ref: self.persons[ref] for ref in self.candidates(person)}


def decide(
    weights: Weights,
    person: Person,
    candidates: Mapping[str, Person],
    threshold: float = 0.99,
    margin: float = 4.0,
) -> Decision:
    """Link to the best candidate only if it is likely enough and clearly the best."""
    if not candidates:
        return Decision(None, 0.0, "no-candidates", 0)
    scored = sorted(
        ((weights.log_odds(compare(person, c)), ref) for ref, c in candidates.items()),
        reverse=True,
    )
    best_odds, best_ref = scored[0]
    probability = 1.0 / (1.0 + math.exp(-best_odds)) if best_odds > -700 else 0.0
    if probability < threshold:
        return Decision(None, probability, "below-threshold", len(scored))
    if len(scored) > 1 and best_odds - scored[1][0] < margin:
        return Decision(None, probability, "ambiguous", len(scored))
    return Decision(best_ref, probability, "matched", len(scored))
