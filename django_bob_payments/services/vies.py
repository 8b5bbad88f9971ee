"""
EU VAT numbers: normalizing them, checking their format and checksum offline with
python-stdnum, and asking the EU VIES service (its REST API) whether they are registered.

VIES answers "valid" or "invalid"; anything else (a member state's service down, too many
concurrent requests, a timeout, a dropped connection) means "unknown", never "invalid": the
number stays unverified and is checked again later (``revalidatevat``).
"""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.core.cache import cache
from django.utils import timezone
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.gb import vat as gb_vat

from django_bob_payments.conf import bob_settings
from django_bob_payments.models import EU_COUNTRIES, BillingInformation

VatStatus = BillingInformation.VatStatus

# VIES's code for a member state where it differs from the ISO country code.
VIES_PREFIX = {"GR": "EL"}
# The United Kingdom: outside the EU VAT area. A UK address takes a GB number (checked offline
# with python-stdnum; VIES does not know it) or, in Northern Ireland, an XI number (checked at
# VIES, since Northern Ireland follows EU VAT rules for goods).
UK_COUNTRY = "GB"

# VIES error codes, all of which mean "unknown".
VIES_ERRORS = (
    "INVALID_INPUT",
    "SERVICE_UNAVAILABLE",
    "MS_UNAVAILABLE",
    "TIMEOUT",
    "MS_MAX_CONCURRENT_REQ",
    "GLOBAL_MAX_CONCURRENT_REQ",
    "VAT_BLOCKED",
    "IP_BLOCKED",
)


@dataclass(frozen=True)
class VatCheck:
    """The verdict on a VAT number, with what backs it."""

    status: str
    number: str = ""
    country: str = ""
    code: str = ""
    message: str = ""
    consultation_number: str = ""
    name: str = ""
    address: str = ""
    checked_at: datetime.datetime | None = None


def vies_prefix(country: str) -> str:
    country = country.upper()
    return VIES_PREFIX.get(country, country)


def normalize(raw: str, country: str) -> VatCheck | str:
    """
    ``raw`` with spaces, dots and dashes removed, upper case, and the VIES prefix of
    ``country`` in front; or a VatCheck saying why it cannot be the number of ``country``.
    A UK address takes a GB number (as is) or an XI one (Northern Ireland).
    """
    number = re.sub(r"[\s.\-/]", "", raw or "").upper()
    country = (country or "").upper()
    expected = ("GB", "XI") if country == UK_COUNTRY else (vies_prefix(country),)
    if country not in EU_COUNTRIES and country != UK_COUNTRY:
        return VatCheck(
            VatStatus.NOT_APPLICABLE, number, country, "not_eu", "VAT numbers are checked for EU countries."
        )
    if not number:
        return VatCheck(VatStatus.NOT_APPLICABLE, "", country, "no_number", "No VAT number.")
    if re.match(r"^[A-Z]{2}", number):
        prefix = number[:2]
        if prefix not in expected:
            hint = " (Greece is EL at VIES)" if country == "GR" and prefix == "GR" else ""
            return VatCheck(
                VatStatus.INVALID,
                number,
                country,
                "country_mismatch",
                f"The number starts with {prefix} but the country is {country}; "
                f"expected {' or '.join(expected)}{hint}.",
            )
    else:
        number = expected[0] + number
    return number


def check_format(raw: str, country: str) -> VatCheck:
    """
    Offline: normalize and check the number's format and checksum. No network. A UK (GB)
    number ends here, ``not_applicable`` to VIES: its format is all that can be checked.
    """
    normalized = normalize(raw, country)
    if isinstance(normalized, VatCheck):
        return normalized
    validator = gb_vat if normalized.startswith("GB") else eu_vat
    try:
        validator.validate(normalized)
    except StdnumError as err:
        code = type(err).__name__.replace("Invalid", "invalid_").lower()
        return VatCheck(VatStatus.INVALID, normalized, country.upper(), code, str(err))
    if validator is gb_vat:
        return VatCheck(
            VatStatus.NOT_APPLICABLE,
            normalized,
            country.upper(),
            "uk_vat",
            "A UK VAT number: its format is checked; VIES does not cover the UK.",
        )
    return VatCheck(VatStatus.UNVERIFIED, normalized, country.upper())


class ViesClient:
    """
    The VIES REST API over one requests session. A check has ``VIES_TIMEOUT`` seconds in
    all; a dropped connection is tried once more within them.
    """

    def __init__(self, base_url: str | None = None, timeout: float | None = None) -> None:
        self.base_url = (base_url or bob_settings.VIES_API_URL).rstrip("/")
        self.timeout = float(timeout if timeout is not None else bob_settings.VIES_TIMEOUT)
        self.session = requests.Session()

    def check(self, number: str) -> VatCheck:
        """Ask VIES about a normalized number (``DE123456789``)."""
        prefix, rest = number[:2], number[2:]
        body: dict[str, str] = {"countryCode": prefix, "vatNumber": rest}
        requester = re.sub(r"[\s.\-]", "", bob_settings.SELLER_VAT_NUMBER or "").upper()
        if requester[:2].isalpha() and len(requester) > 2:
            body["requesterMemberStateCode"] = requester[:2]
            body["requesterNumber"] = requester[2:]
        now = timezone.now()
        deadline = time.monotonic() + self.timeout
        response = None
        for attempt in range(2):
            left = deadline - time.monotonic()
            if left <= 0.01:
                break
            try:
                response = self.session.post(f"{self.base_url}/check-vat-number", json=body, timeout=left)
                break
            except requests.Timeout:
                return VatCheck(VatStatus.UNVERIFIED, number, code="TIMEOUT", message="VIES did not answer in time.")
            except requests.ConnectionError:
                if attempt == 1:
                    break
            except requests.RequestException:
                break
        if response is None:
            if deadline - time.monotonic() <= 0.01:
                return VatCheck(VatStatus.UNVERIFIED, number, code="TIMEOUT", message="VIES did not answer in time.")
            return VatCheck(VatStatus.UNVERIFIED, number, code="SERVICE_UNAVAILABLE", message="VIES is unreachable.")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            return VatCheck(
                VatStatus.UNVERIFIED,
                number,
                code="SERVICE_UNAVAILABLE",
                message=f"VIES answered HTTP {response.status_code}.",
            )
        return self._verdict(number, data, now)

    def _verdict(self, number: str, data: dict[str, Any], now: datetime.datetime) -> VatCheck:
        errors = data.get("errorWrappers") or []
        error = (errors[0].get("error") if errors and isinstance(errors[0], dict) else None) or (
            data.get("userError") if data.get("userError") not in (None, "VALID", "INVALID") else None
        )
        valid = data.get("valid", data.get("isValid"))
        if error or not isinstance(valid, bool):
            code = error if error in VIES_ERRORS else "SERVICE_UNAVAILABLE"
            return VatCheck(VatStatus.UNVERIFIED, number, code=code, message="VIES could not check the number now.")

        def disclosed(value: Any) -> str:
            return "" if value in (None, "---") else str(value).strip()

        return VatCheck(
            VatStatus.VALID if valid else VatStatus.INVALID,
            number,
            code="" if valid else "not_registered",
            message="" if valid else "VIES does not know this number.",
            consultation_number=str(data.get("requestIdentifier") or ""),
            name=disclosed(data.get("name")),
            address=disclosed(data.get("address")),
            checked_at=now,
        )


# The member states' codes at VIES, Northern Ireland's included.
VIES_STATES = tuple(sorted({vies_prefix(country) for country in EU_COUNTRIES} | {"XI"}))

# VIES errors after which a member state (or VIES as a whole) is left alone for VIES_BACKOFF.
STATE_OUTAGES = frozenset(("TIMEOUT", "MS_UNAVAILABLE", "MS_MAX_CONCURRENT_REQ"))
GLOBAL_OUTAGES = frozenset(("SERVICE_UNAVAILABLE", "GLOBAL_MAX_CONCURRENT_REQ"))


class CircuitBreaker:
    """
    Per member state, in Django's cache: after an outage VIES is not asked about that state
    (or, after VIES itself failed, about any) for ``VIES_BACKOFF`` seconds.
    """

    prefix = "bob_payments:vies:down:"

    def open_for(self, state: str) -> str | None:
        """The VIES error that opened the breaker for ``state`` (or for all), or None when closed."""
        found = cache.get_many([self.prefix + state, self.prefix + "*"])
        return found.get(self.prefix + state) or found.get(self.prefix + "*")

    def reset(self, state: str | None = None) -> None:
        """Close the breaker of one member state, or every breaker."""
        if state is not None:
            cache.delete(self.prefix + state)
            return
        cache.delete_many([self.prefix + code for code in ("*", *VIES_STATES)])

    def record(self, state: str, code: str) -> None:
        backoff = bob_settings.VIES_BACKOFF
        if not backoff:
            return
        if code in STATE_OUTAGES:
            cache.set(self.prefix + state, code, timeout=backoff)
        elif code in GLOBAL_OUTAGES:
            cache.set(self.prefix + "*", code, timeout=backoff)


class VatValidator:
    """
    Format and checksum first (no network for a number that fails them), then VIES, cached;
    not VIES while its breaker is open for the number's member state.
    """

    cache_prefix = "bob_payments:vies:"

    def __init__(self, client: ViesClient | None = None, breaker: CircuitBreaker | None = None) -> None:
        self.client = client
        self.breaker = breaker or CircuitBreaker()

    def validate(self, raw: str, country: str, *, use_cache: bool = True) -> VatCheck:
        offline = check_format(raw, country)
        if offline.status != VatStatus.UNVERIFIED:
            return offline
        key = self.cache_prefix + offline.number
        if use_cache:
            cached = cache.get(key)
            if cached is not None:
                return VatCheck(**{**cached, "country": offline.country})
        state = offline.number[:2]
        outage = self.breaker.open_for(state)
        if outage:
            return VatCheck(
                VatStatus.UNVERIFIED,
                offline.number,
                offline.country,
                code=outage,
                message=f"VIES is unavailable for {state} at the moment; the number is checked again later.",
            )
        verdict = (self.client or ViesClient()).check(offline.number)
        verdict = VatCheck(**{**verdict.__dict__, "country": offline.country})
        # Only answers are cached: an unknown is asked again next time.
        if verdict.status in (VatStatus.VALID, VatStatus.INVALID):
            cache.set(key, {**verdict.__dict__}, timeout=bob_settings.VIES_CACHE_DAYS * 86400)
        else:
            self.breaker.record(state, verdict.code)
        return verdict
