import pytest

from wijkhub.connectors.identity import (
    InvalidInput,
    Pseudonymiser,
    address_ref,
    bsn_is_valid,
    split_street,
)

KEY = b"k" * 32


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "12345672"])
def test_valid_bsns_pass_the_elfproef(bsn):
    assert bsn_is_valid(bsn)


@pytest.mark.parametrize(
    "bsn", ["123456780", "12345678X", "1234567", "1234567890", "", "000000000"]
)
def test_invalid_bsns_fail(bsn):
    assert not bsn_is_valid(bsn)


def test_pseudonym_is_stable_keyed_and_hides_the_bsn():
    p = Pseudonymiser(KEY)
    ref = p.person_ref("111222333")
    assert ref == p.person_ref(" 111222333 ")
    assert ref != Pseudonymiser(b"x" * 32).person_ref("111222333")
    assert "111222333" not in ref
    assert ref.startswith("P1-") and len(ref) == 35  # the key id, then the keyed digest
    rotated = Pseudonymiser(p.key, key_id="2").person_ref("111222333")
    assert rotated.startswith("P2-") and rotated[3:] == ref[3:]  # same key: only the id differs


def test_eight_digit_bsn_is_the_same_person_as_its_zero_padded_form():
    p = Pseudonymiser(KEY)
    assert p.person_ref("12345672") == p.person_ref("012345672")


def test_invalid_bsn_error_does_not_quote_it():
    with pytest.raises(InvalidInput) as exc:
        Pseudonymiser(KEY).person_ref("123456780")
    assert "123456780" not in str(exc.value)


def test_short_key_is_refused():
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


@pytest.mark.parametrize(
    ("postcode", "house", "expected"),
    [
        ("1234ab", "12", "1234AB-12"),
        ("1234 AB", "12 a", "1234AB-12-A"),
        ("1234AB", "12-a", "1234AB-12-A"),
        ("1234AB", "12A-2", "1234AB-12-A-2"),
        ("1234AB", "012", "1234AB-12"),
        ("1234ab", "12 bis", "1234AB-12--BIS"),
        ("1234AB", "12-2", "1234AB-12--2"),
        ("1234AB", "12 A 2", "1234AB-12-A-2"),
        ("1234AB", "12/hs", "1234AB-12--HS"),
    ],
)
def test_address_normalisation(postcode, house, expected):
    assert address_ref(postcode, house) == expected


def test_postcode_and_house_win_over_the_bag_id_which_is_checked():
    # Signals without a BRP link only know the postcode form: one door, one key.
    assert address_ref("1234AB", "1 a", "0363200000123456") == "1234AB-1-A"
    assert address_ref(None, None, "0363200000123456") == "BAG-0363200000123456"
    assert address_ref("1234AB", None, "0363200000123456") == "BAG-0363200000123456"
    with pytest.raises(InvalidInput):
        address_ref(bag_id="12345")
    with pytest.raises(InvalidInput):  # malformed postcode: refused, not keyed by the BAG id
        address_ref("12345", "1", "0363200000123456")


@pytest.mark.parametrize(
    ("postcode", "house"), [("0123AB", "1"), ("1234", "1"), ("1234AB", ""), (None, "1")]
)
def test_bad_addresses_are_refused(postcode, house):
    with pytest.raises(InvalidInput):
        address_ref(postcode, house)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Hoofdstr. 12-a", ("hoofdstraat", "12-a")),
        ("Hoofdstraat 12 A", ("hoofdstraat", "12 A")),
        ("Laan van Meerdervoort 1234 bis", ("laan van meerdervoort", "1234 bis")),
        ("Postbus", None),
    ],
)
def test_an_address_line_splits_into_street_and_number(line, expected):
    assert split_street(line) == expected
    if expected:
        assert address_ref("1234AB", expected[1]).startswith("1234AB-")


def test_spelling_variants_of_one_door_give_one_key():
    variants = [
        ("1234ab", split_street("Hoofdstr. 12-a")[1]),
        ("1234 AB", "12 A"),
        ("1234AB", "12a"),
    ]
    assert {address_ref(p, h) for p, h in variants} == {"1234AB-12-A"}
