"""Where customers are sent back: only to hosts the project names, never to one a Host header picks."""

import pytest


def checkout(api, pricing, host="testserver", **data):
    return api.post(
        "/api/payment/checkout/", {"pricing": pricing.pk, **data}, content_type="application/json", HTTP_HOST=host
    )


pytestmark = [pytest.mark.django_db, pytest.mark.security]

NO_URL_SETTINGS = ("CHECKOUT_SUCCESS_URL", "CHECKOUT_CANCEL_URL", "PORTAL_RETURN_URL")


@pytest.fixture
def bare(settings):
    """No URL settings: the allow-list comes from ALLOWED_HOSTS alone."""
    settings.BOB_PAYMENTS = {k: v for k, v in settings.BOB_PAYMENTS.items() if k not in NO_URL_SETTINGS}
    return settings


@pytest.mark.parametrize(
    ("allowed_hosts", "host", "url"),
    [
        (["*"], "evil.example", "https://evil.example/phish"),
        ([".example.com"], "evil.example.com", "https://evil.example.com/phish"),
        (["shop.example", "*"], "evil.example", "https://evil.example/phish"),
        (["shop.example"], "shop.example", "https://shop.example.evil.example/phish"),
        (["shop.example"], "shop.example", "https://shop.example@evil.example/phish"),
        (["shop.example"], "shop.example", "//evil.example/phish"),
        (["shop.example"], "shop.example", "javascript:alert(1)"),
        (["shop.example"], "shop.example", "http://shop.example/insecure"),
    ],
)
@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
def test_a_caller_given_url_on_another_host_is_refused(
    api, shop, stripe_emulator, bare, allowed_hosts, host, url, field
):
    bare.ALLOWED_HOSTS = allowed_hosts
    response = checkout(api, shop["pro_monthly"], host, **{field: url})
    assert response.status_code == 400, response.content
    assert set(response.json()) & {"success_url", "cancel_url"}, response.json()
    assert stripe_emulator.count("POST", "/v1/checkout/sessions") == 0


def test_the_portal_refuses_a_return_url_on_a_host_the_header_picked(api, shop, stripe_emulator, bare):
    from tests.shop import buy

    buy(api, stripe_emulator, shop["pro_monthly"])
    bare.ALLOWED_HOSTS = ["*"]
    response = api.post("/api/payment/portal/", {"return_url": "https://evil.example/phish"}, HTTP_HOST="evil.example")
    assert response.status_code == 400, response.content
    assert stripe_emulator.count("POST", "/v1/billing_portal/sessions") == 0


def test_a_default_return_url_is_built_only_on_an_allowed_host(api, shop, stripe_emulator, bare):
    bare.ALLOWED_HOSTS = ["*"]
    response = checkout(api, shop["pro_monthly"], "evil.example")
    assert response.status_code == 400, response.content
    assert stripe_emulator.count("POST", "/v1/checkout/sessions") == 0
    # Named in RETURN_URL_HOSTS, the host is trusted.
    bare.BOB_PAYMENTS = {**bare.BOB_PAYMENTS, "RETURN_URL_HOSTS": ["shop.example"]}
    assert checkout(api, shop["pro_monthly"], "shop.example").status_code == 201
    assert (
        checkout(api, shop["pro_monthly"], "shop.example", success_url="https://shop.example/done").status_code == 201
    )


def test_the_url_settings_hosts_are_allowed(api, shop, stripe_emulator, settings):
    """The shop fixture's URL settings are on shop.example: a caller may use that host."""
    settings.ALLOWED_HOSTS = ["*"]
    response = checkout(api, shop["pro_monthly"], "evil.example", success_url="https://shop.example/thanks")
    assert response.status_code == 201, response.content
