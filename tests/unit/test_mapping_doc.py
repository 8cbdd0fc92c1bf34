"""connectors/MAPPING.md names every column name and code that formats/columns.py reads.

The mapping table is what a municipality's functioneel beheerder checks an
export against; a name accepted in code but missing there is a field read
without anyone being told, so the two may not drift.
"""

import re
from pathlib import Path

import pytest

from wijkhub.connectors.formats.columns import ALIASES, HOUSE_PARTS, VALUES

MAPPING = Path(__file__).resolve().parents[2] / "connectors" / "MAPPING.md"


def documented() -> set[str]:
    """Every `quoted` name in MAPPING.md, lower case (names match case-insensitively)."""
    return {name.lower() for name in re.findall(r"`([^`]+)`", MAPPING.read_text())}


ALIAS_NAMES = sorted(
    {(source, field, name) for source, fields in ALIASES.items()
     for field, names in fields.items() for name in (field, *names)}
    | {(source, "huisnummer", name) for source, parts in HOUSE_PARTS.items()
       for names in parts for name in names}
)  # fmt: skip


@pytest.mark.parametrize(("source", "field", "name"), ALIAS_NAMES)
def test_every_source_column_alias_is_in_the_mapping_table(source, field, name):
    assert name in documented(), f"{source}: {field} ← {name} is read but not in MAPPING.md"


def test_every_translated_code_is_in_the_mapping_table():
    missing = [f"{field}: {code}" for field, codes in VALUES.items() for code in codes
               if code not in documented()]  # fmt: skip
    assert missing == []


def test_the_brp_name_and_birth_fields_used_for_matching_are_there():
    names = documented()
    for brp_csv, haal_centraal in [("geslachtsnaam", "naam.geslachtsnaam"),
                                   ("voorvoegsel", "naam.voorvoegsel"),
                                   ("voorletters", "naam.voorletters"),
                                   ("voornamen", "naam.voornamen"),
                                   ("geboortedatum", "geboorte.datum.datum")]:  # fmt: skip
        assert {brp_csv, haal_centraal} <= names
