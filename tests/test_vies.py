"""VAT numbers: normalization, offline checks, and VIES over HTTP with its error codes."""

import pytest

from django_bob_payments.services.vies import CircuitBreaker, VatValidator, ViesClient, check_format, normalize
from django_bob_payments.testing.vies import ViesEmulator


def validate(number, country, **kwargs):
    return VatValidator().validate(number, country, **kwargs)


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("de 136.695.976", "DE", "DE136695976"),
        ("136695976", "DE", "DE136695976"),
        ("094259216", "GR", "EL094259216"),
        ("EL094259216", "GR", "EL094259216"),
        ("U12345675", "AT", "ATU12345675"),
        ("nl004495445b01", "NL", "NL004495445B01"),
        ("XI123456782", "GB", "XI123456782"),
        ("FR-40-303-265-045", "FR", "FR40303265045"),
    ],
)
def test_numbers_are_normalized_with_their_vies_prefix(raw, country, expected):
    assert normalize(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "country", "code"),
    [
        ("GR094259216", "GR", "country_mismatch"),
        ("FR40303265045", "DE", "country_mismatch"),
        ("DE136695976", "GB", "country_mismatch"),
        ("DE123456789", "DE", "invalid_checksum"),
        ("DE12345678", "DE", "invalid_length"),
    ],
)
def test_wrong_numbers_are_invalid_before_any_vies_call(vies, raw, country, code):
    verdict = validate(raw, country)
    assert (verdict.status, verdict.code) == ("invalid", code)
    assert verdict.message
    assert vies.requests == []


def test_greece_hint_names_el():
    assert "EL" in check_format("GR094259216", "GR").message


@pytest.mark.parametrize(("number", "country"), [("", "DE"), ("CHE123456789", "CH"), ("123", "US")])
def test_no_number_or_non_eu_is_not_applicable(vies, number, country):
    assert validate(number, country).status == "not_applicable"
    assert vies.requests == []


def test_a_registered_number_is_valid_with_a_consultation_number(vies, settings):
    vies.register("EL094259216", name="OTE AE", address="Athens")
    verdict = validate("094259216", "GR")
    assert (verdict.status, verdict.number, verdict.name, verdict.address) == (
        "valid",
        "EL094259216",
        "OTE AE",
        "Athens",
    )
    assert verdict.consultation_number.startswith("WAPI")
    assert verdict.checked_at is not None
    sent = vies.requests[0]["body"]
    assert sent == {
        "countryCode": "EL",
        "vatNumber": "094259216",
        "requesterMemberStateCode": "FR",
        "requesterNumber": "40303265045",
    }


def test_without_a_seller_number_no_requester_is_sent(vies, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "SELLER_VAT_NUMBER": None}
    vies.register("DE136695976")
    verdict = validate("DE136695976", "DE")
    assert verdict.status == "valid"
    assert verdict.consultation_number == ""
    assert "requesterNumber" not in vies.requests[0]["body"]


def test_an_unregistered_number_is_invalid_and_undisclosed_fields_are_empty(vies):
    verdict = validate("DE136695976", "DE")
    assert (verdict.status, verdict.code, verdict.name, verdict.address) == ("invalid", "not_registered", "", "")


@pytest.mark.parametrize(
    "error",
    [
        "MS_UNAVAILABLE",
        "TIMEOUT",
        "SERVICE_UNAVAILABLE",
        "MS_MAX_CONCURRENT_REQ",
        "GLOBAL_MAX_CONCURRENT_REQ",
        "INVALID_INPUT",
        "VAT_BLOCKED",
        "IP_BLOCKED",
    ],
)
def test_every_vies_error_means_unknown_never_invalid(vies, error):
    vies.register("DE136695976")
    vies.fail("DE", error)
    verdict = validate("DE136695976", "DE")
    assert (verdict.status, verdict.code) == ("unverified", error)


def test_a_slow_vies_is_unknown(vies, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_TIMEOUT": 0.2}
    vies.delay = 0.5
    assert validate("DE136695976", "DE").status == "unverified"


def test_a_dropped_connection_is_retried_then_unknown(vies):
    vies.drop = True
    verdict = validate("DE136695976", "DE")
    assert (verdict.status, verdict.code) == ("unverified", "SERVICE_UNAVAILABLE")
    assert len(vies.requests) == 2  # the first try and one retry


def test_nobody_listening_is_unknown(settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_API_URL": "http://127.0.0.1:9/vies"}
    assert validate("DE136695976", "DE").status == "unverified"


def test_answers_are_cached_unknowns_are_not(vies):
    vies.register("DE136695976")
    assert validate("DE136695976", "DE").status == "valid"
    assert validate("DE 136 695 976", "DE").status == "valid"
    assert len(vies.requests) == 1
    vies.fail("FR", "MS_UNAVAILABLE")
    validate("FR40303265045", "FR")
    CircuitBreaker().reset()  # the back-off has passed
    validate("FR40303265045", "FR")
    assert len(vies.requests) == 3
    assert validate("DE136695976", "DE", use_cache=False).status == "valid"
    assert len(vies.requests) == 4


def test_the_other_spelling_is_understood(vies):
    client = ViesClient(vies.url)
    vies.register("DE136695976")
    assert client._verdict("DE136695976", {"isValid": True, "userError": "VALID"}, None).status == "valid"
    assert client._verdict("DE136695976", {"isValid": False, "userError": "INVALID"}, None).status == "invalid"
    verdict = client._verdict("DE136695976", {"isValid": False, "userError": "MS_UNAVAILABLE"}, None)
    assert (verdict.status, verdict.code) == ("unverified", "MS_UNAVAILABLE")


def test_the_emulator_speaks_both_endpoints():
    import requests

    emulator = ViesEmulator()
    url = emulator.start()
    try:
        emulator.register("DE136695976", name="X")
        assert requests.get(f"{url}/ms/DE/vat/136695976", timeout=5).json()["isValid"] is True
        emulator.fail("DE", "MS_UNAVAILABLE")
        assert requests.get(f"{url}/ms/DE/vat/136695976", timeout=5).json()["userError"] == "MS_UNAVAILABLE"
        status = requests.get(f"{url}/check-status", timeout=5).json()
        assert {"countryCode": "DE", "availability": "Unavailable"} in status["countries"]
    finally:
        emulator.stop()


@pytest.mark.security
def test_a_hanging_vies_cannot_stall_the_site(client, make_user, vies, settings):
    """The first save waits at most the budget; the next ones for that state answer at once."""
    import time

    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_TIMEOUT": 1}
    vies.register("DE136695976")
    vies.register("FR40303265045")
    vies.delay = 10
    data = {"name": "Alice GmbH", "email": "a@example.com", "country": "DE", "vat_number": "DE136695976"}
    timings = []
    for name in ("first", "second", "third"):
        client.force_login(make_user(name))
        started = time.monotonic()
        response = client.post("/api/payment/billing/", data, content_type="application/json")
        timings.append(time.monotonic() - started)
        assert response.status_code == 201, response.content
        assert (response.json()["vat_status"], response.json()["tax_exempt"]) == ("unverified", "none")
    assert timings[0] < 2.5, timings
    assert max(timings[1:]) < 0.5, timings
    assert len(vies.requests) == 1, "the breaker keeps VIES out of the next checks for DE"
    # Another member state is still asked.
    vies.delay = 0
    assert validate("FR40303265045", "FR").status == "valid"
    # After the back-off, DE is asked again, and the number confirmed.
    CircuitBreaker().reset("DE")
    assert validate("DE136695976", "DE").status == "valid"


def test_vies_itself_failing_opens_the_breaker_for_every_state(vies):
    vies.drop = True
    assert validate("DE136695976", "DE").code == "SERVICE_UNAVAILABLE"
    asked = len(vies.requests)
    assert validate("FR40303265045", "FR").status == "unverified"
    assert len(vies.requests) == asked
