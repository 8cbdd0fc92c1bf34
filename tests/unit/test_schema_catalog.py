"""A changed schema is checked for backward compatibility before it can be used."""

import datetime as dt
import json
import shutil

import pytest

from wijkhub.schemas.registry import (
    ALERT,
    SCHEMA_DIR,
    SUBJECTS,
    Catalog,
    DecodeError,
    SchemaError,
    register_changes,
)


@pytest.fixture
def schemas(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def edit_alert(directory, change):
    path = directory / f"{ALERT}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def alert(**over):
    when = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    record = {
        "alert_id": "A-1",
        "rule_id": "R",
        "rule_version": 1,
        "family": "early_detection",
        "severity": "high",
        "state": "open",
        "household_ref": "H-1",
        "team": "t",
        "municipality": "0363",
        "summary": "s",
        "raised_at": when,
        "facts": [],
        "correlation_id": "c",
    }
    record.update(over)
    return record


def test_the_repository_catalog_is_registered_and_consistent():
    catalog = Catalog()
    assert {catalog.latest(s).subject for s in SUBJECTS} == set(SUBJECTS)


def test_a_compatible_change_must_be_registered_and_then_reads_old_data(schemas):
    old = Catalog(schemas)
    written_with_v1 = old.encode(ALERT, alert())
    edit_alert(
        schemas, lambda s: s["fields"].append({"name": "escalations", "type": "int", "default": 0})
    )
    with pytest.raises(SchemaError, match="backward compatible but not registered"):
        Catalog(schemas)
    v1 = old.latest(ALERT)
    next_id = 1 + max(old.latest(s).schema_id for s in SUBJECTS)
    assert register_changes(schemas) == [f"{ALERT} v{v1.version + 1} (id {next_id})"]
    new = Catalog(schemas)
    assert new.latest(ALERT).version == v1.version + 1
    assert new.decode(written_with_v1, ALERT)["escalations"] == 0
    assert new.decode(new.encode(ALERT, alert(escalations=3)), ALERT)["escalations"] == 3


def test_an_incompatible_change_is_refused_and_not_registered(schemas):
    catalog_before = (schemas / "catalog.json").read_text()
    edit_alert(schemas, lambda s: s["fields"].append({"name": "score", "type": "int"}))
    with pytest.raises(SchemaError, match="NOT backward compatible"):
        Catalog(schemas)
    with pytest.raises(SchemaError, match="score"):
        register_changes(schemas)
    assert (schemas / "catalog.json").read_text() == catalog_before


def test_removing_an_enum_symbol_is_incompatible(schemas):
    def drop_critical(s):
        severity = next(f for f in s["fields"] if f["name"] == "severity")
        severity["type"]["symbols"].remove("critical")

    edit_alert(schemas, drop_critical)
    with pytest.raises(SchemaError, match="NOT backward compatible"):
        Catalog(schemas)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x01\x00\x00\x00\x03xx", "magic"),
        (b"\x00\x00\x00\x03\xe7x", "unknown schema id"),
        (b"\x00\x00\x00\x00\x01\xff\xff", "expected nl.wijkhub.Alert"),
        (b"\x00\x00\x00\x00\x03\xff\xff\xff", "corrupt"),
    ],
)
def test_undecodable_bytes_give_a_clear_error(data, message):
    with pytest.raises(DecodeError, match=message):
        Catalog().decode(data, ALERT)
