"""CBS districts from the pc6hnr table."""

import pytest

from wijkhub.broker import DISTRICT_FIXTURE
from wijkhub.streams.district import District, DistrictTable, DistrictTableError


def write(tmp_path, *lines):
    path = tmp_path / "pc6hnr20240801_gwb.csv"
    path.write_text("\n".join(["PC6;Huisnummer;Buurt2024;Wijk2024;Gemeente2024", *lines]) + "\n")
    return path


def test_codes_get_their_prefix_and_leading_zeros_and_the_year(tmp_path):
    table = DistrictTable.load(write(tmp_path, "1011AB;5;3630203;36302;363"))
    assert table.lookup("1011AB-5-A") == District("BU03630203", "WK036302", "GM0363", 2024)


def test_only_the_configured_municipality_is_kept(tmp_path):
    path = write(tmp_path, "1011AB;5;3630203;36302;363", "9999ZZ;1;5990101;59901;599")
    table = DistrictTable.load(path, municipality="0363")
    assert table.lookup("9999ZZ-1") is None and table.lookup("1011AB-5") is not None


def test_an_unlisted_number_uses_the_postcode_only_when_it_lies_in_one_buurt(tmp_path):
    path = write(tmp_path, "1011AB;5;3630203;36302;363", "1011AC;1;3630203;36302;363",
                 "1011AC;3;3630204;36302;363")  # fmt: skip
    table = DistrictTable.load(path)
    assert table.lookup("1011AB-7").buurt == "BU03630203"
    assert table.lookup("1011AC-5") is None
    assert table.lookup("BAG-0363200000123456") is None


def test_a_file_not_in_the_cbs_layout_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("postcode,nr\n1011AB,5\n")
    with pytest.raises(DistrictTableError, match="expected the CBS header"):
        DistrictTable.load(bad)
    with pytest.raises(DistrictTableError, match="cannot read"):
        DistrictTable.load(tmp_path / "missing.csv")
    with pytest.raises(DistrictTableError, match=":2: not a CBS line"):
        DistrictTable.load(write(tmp_path, "1011AB;vijf;3630203;36302;363"))


def test_the_shipped_fixture_loads():
    table = DistrictTable.load(DISTRICT_FIXTURE, municipality="0363")
    assert table.year == 2025 and table.lookup("1011AB-1").gemeente == "GM0363"
