"""synchronizepayments against the emulated Stripe API, through the real SDK over HTTP."""

import io

import pytest
from django.core.management import CommandError, call_command

from django_bob_payments.models import (
    BillingInformation,
    Customer,
    ExternalCustomer,
    ExternalPricing,
    ExternalProduct,
    Pricing,
    Product,
)
from django_bob_payments.providers.stripe import StripeProvider

pytestmark = pytest.mark.django_db


def sync(*args, **kwargs):
    stdout, stderr = io.StringIO(), io.StringIO()
    kwargs.setdefault("verbosity", 1)
    call_command("synchronizepayments", *args, stdout=stdout, stderr=stderr, **kwargs)
    return stdout.getvalue(), stderr.getvalue()


def sync_failing(*args, **kwargs):
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("synchronizepayments", *args, stdout=stdout, stderr=stderr, verbosity=1, **kwargs)
    return str(excinfo.value), stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def catalog(db):
    """2 products with 3 prices, one product without a description."""
    pro = Product.objects.create(slug="pro", name="Pro", description="For teams", limits={"seats": 5})
    solo = Product.objects.create(slug="solo", name="Solo")
    prices = [
        Pricing.objects.create(product=pro, amount=2900, currency="eur", type="recurring", interval="month"),
        Pricing.objects.create(
            product=pro, amount=29000, currency="eur", type="recurring", interval="year", nickname="Yearly"
        ),
        Pricing.objects.create(product=solo, amount=4900, currency="usd", type="one_time"),
    ]
    return [pro, solo], prices


@pytest.fixture
def customers(make_user):
    """3 customers: one with full billing data and a VAT number, one plain, one French."""
    alice, bob, chloe = make_user("alice"), make_user("bob", first_name="Bob", last_name="Builder"), make_user("chloe")
    BillingInformation.objects.create(
        customer=alice.payment_customers.get(),
        name="Alice GmbH",
        email="billing@alice.example",
        address_line1="Hauptstr. 1",
        postal_code="10115",
        city="Berlin",
        country="DE",
        vat_number="DE123456789",
        vat_status="valid",
        tax_exempt="reverse",
    )
    BillingInformation.objects.create(
        customer=chloe.payment_customers.get(), name="Chloe SARL", email="chloe@example.fr", country="FR"
    )
    Customer.objects.filter(user=chloe).update(preferred_locale="fr")
    return [user.payment_customers.get() for user in (alice, bob, chloe)]


def test_first_run_creates_each_object_with_one_call(stripe_emulator, catalog, customers):
    stdout, _ = sync()
    assert stripe_emulator.count("POST", "/v1/products") == 2
    assert stripe_emulator.count("POST", "/v1/prices") == 3
    assert stripe_emulator.count("POST", "/v1/customers") == 3
    # Nothing at Stripe yet: one list call per kind, and no other write.
    assert stripe_emulator.count("GET") == 3
    assert stripe_emulator.write_calls == 8
    assert "products" in stdout and "created" in stdout
    assert ExternalProduct.objects.count() == 2
    assert ExternalPricing.objects.count() == 3
    assert ExternalCustomer.objects.count() == 3


def test_objects_carry_the_local_data_and_id(stripe_emulator, catalog, customers):
    sync()
    (pro, solo), (monthly, yearly, one_off) = catalog
    products = {obj["metadata"]["bob_payments_id"]: obj for obj in stripe_emulator.all("product")}
    assert products[str(pro.pk)]["name"] == "Pro"
    assert products[str(pro.pk)]["description"] == "For teams"
    assert products[str(solo.pk)]["description"] is None
    assert ExternalProduct.objects.get(product=pro).external_id == products[str(pro.pk)]["id"]

    prices = {obj["metadata"]["bob_payments_id"]: obj for obj in stripe_emulator.all("price")}
    assert prices[str(monthly.pk)]["recurring"]["interval"] == "month"
    assert prices[str(monthly.pk)]["product"] == products[str(pro.pk)]["id"]
    assert prices[str(yearly.pk)]["nickname"] == "Yearly"
    assert (prices[str(one_off.pk)]["type"], prices[str(one_off.pk)]["recurring"]) == ("one_time", None)

    alice, bob, chloe = customers
    remote = {obj["metadata"]["bob_payments_id"]: obj for obj in stripe_emulator.all("customer")}
    assert remote[str(alice.pk)]["name"] == "Alice GmbH"
    assert remote[str(alice.pk)]["email"] == "billing@alice.example"
    assert remote[str(alice.pk)]["address"]["city"] == "Berlin"
    assert remote[str(alice.pk)]["tax_exempt"] == "reverse"
    assert [(tax["type"], tax["value"]) for tax in stripe_emulator.all("tax_id")] == [("eu_vat", "DE123456789")]
    assert (remote[str(bob.pk)]["name"], remote[str(bob.pk)]["email"]) == ("Bob Builder", "bob@example.com")
    assert remote[str(chloe.pk)]["preferred_locales"] == ["fr"]


def test_second_run_without_changes_writes_nothing(stripe_emulator, catalog, customers):
    sync()
    stripe_emulator.calls.clear()
    stdout, _ = sync()
    assert stripe_emulator.write_calls == 0
    assert stripe_emulator.count("GET") == 3
    assert "unchanged" in stdout


def test_list_calls_page_by_hundred(stripe_emulator, make_user):
    for _ in range(150):
        make_user()
    sync("--only", "customers")
    stripe_emulator.calls.clear()
    sync("--only", "customers")
    assert stripe_emulator.count("GET", "/v1/customers") == 2
    assert stripe_emulator.write_calls == 0


def test_only_changed_fields_are_sent(stripe_emulator, catalog, customers):
    sync()
    alice = customers[0]
    BillingInformation.objects.filter(customer=alice).update(city="Hamburg")
    Product.objects.filter(slug="pro").update(name="Pro Plus")
    stripe_emulator.calls.clear()
    sync()
    assert stripe_emulator.write_calls == 2
    assert stripe_emulator.count("POST", "/v1/customers/:id") == 1
    assert stripe_emulator.count("POST", "/v1/products/:id") == 1
    remote = next(obj for obj in stripe_emulator.all("customer") if obj["metadata"]["bob_payments_id"] == str(alice.pk))
    assert remote["address"]["city"] == "Hamburg"
    assert remote["address"]["line1"] == "Hauptstr. 1"


def test_a_price_change_creates_a_new_price_and_archives_the_old(stripe_emulator, catalog):
    sync()
    _, (monthly, _, _) = catalog
    old_id = ExternalPricing.objects.get(pricing=monthly).external_id
    monthly.amount = 3900
    monthly.save()
    stripe_emulator.calls.clear()
    sync()
    new_id = ExternalPricing.objects.get(pricing=monthly).external_id
    assert new_id != old_id
    assert stripe_emulator.count("POST", "/v1/prices") == 1
    assert stripe_emulator.count("POST", "/v1/prices/:id") == 1
    prices = {obj["id"]: obj for obj in stripe_emulator.all("price")}
    assert (prices[new_id]["unit_amount"], prices[new_id]["active"]) == (3900, True)
    assert (prices[old_id]["unit_amount"], prices[old_id]["active"]) == (2900, False)
    # Back to the old amount: the archived price is reactivated, not duplicated.
    monthly.amount = 2900
    monthly.save()
    sync()
    assert ExternalPricing.objects.get(pricing=monthly).external_id == old_id
    prices = {obj["id"]: obj for obj in stripe_emulator.all("price")}
    assert (prices[old_id]["active"], prices[new_id]["active"]) == (True, False)
    assert len(prices) == 4


def test_inactive_and_deleted_rows_are_archived_never_deleted(stripe_emulator, catalog):
    sync()
    (_, solo), (monthly, yearly, one_off) = catalog
    Product.objects.filter(pk=solo.pk).update(is_active=False)
    Pricing.objects.filter(pk=yearly.pk).update(is_active=False)
    monthly_id = ExternalPricing.objects.get(pricing=monthly).external_id
    monthly.delete()
    stripe_emulator.calls.clear()
    sync()
    assert stripe_emulator.count("DELETE") == 0
    products = {obj["name"]: obj for obj in stripe_emulator.all("product")}
    assert products["Solo"]["active"] is False
    assert products["Pro"]["active"] is True
    prices = {obj["id"]: obj for obj in stripe_emulator.all("price")}
    assert prices[monthly_id]["active"] is False
    assert prices[ExternalPricing.objects.get(pricing=yearly).external_id]["active"] is False
    # A price of an inactive product cannot be bought either.
    assert prices[ExternalPricing.objects.get(pricing=one_off).external_id]["active"] is False
    assert len(prices) == 3
    assert stripe_emulator.write_calls == 4


def test_a_vat_number_change_replaces_the_tax_id(stripe_emulator, customers):
    sync("--only", "customers")
    alice = customers[0]
    BillingInformation.objects.filter(customer=alice).update(vat_number="DE987654321")
    stripe_emulator.calls.clear()
    sync("--only", "customers")
    assert [tax["value"] for tax in stripe_emulator.all("tax_id")] == ["DE987654321"]
    assert stripe_emulator.count("DELETE", "/v1/customers/:customer/tax_ids/:id") == 1
    assert stripe_emulator.count("POST", "/v1/customers/:customer/tax_ids") == 1
    assert stripe_emulator.count("POST", "/v1/customers/:id") == 0
    # Removing the number removes the tax ID.
    BillingInformation.objects.filter(customer=alice).update(vat_number="")
    sync("--only", "customers")
    assert stripe_emulator.all("tax_id") == []


def test_a_uk_number_is_pushed_as_gb_vat_and_a_northern_irish_one_as_eu_vat(stripe_emulator, customers):
    alice = customers[0]
    BillingInformation.objects.filter(customer=alice).update(country="GB", vat_number="GB980780684")
    sync("--only", "customers")
    assert [(tax["type"], tax["value"]) for tax in stripe_emulator.all("tax_id")] == [("gb_vat", "GB980780684")]
    BillingInformation.objects.filter(customer=alice).update(vat_number="XI980780684")
    sync("--only", "customers")
    assert [(tax["type"], tax["value"]) for tax in stripe_emulator.all("tax_id")] == [("eu_vat", "XI980780684")]


def test_what_stripe_cannot_unset_is_left_alone_not_sent_empty(stripe_emulator, catalog, customers):
    """The SDK's types allow no "" for a price's nickname or a customer's locales: never sent empty."""
    sync()
    yearly = catalog[1][1]
    Pricing.objects.filter(pk=yearly.pk).update(nickname="")
    chloe = customers[2]
    Customer.objects.filter(pk=chloe.pk).update(preferred_locale="")
    stdout, _ = sync()
    failed = {line.split()[0]: line.split()[-1] for line in stdout.splitlines()[2:] if line.strip()}
    assert failed == {"products": "0", "prices": "0", "customers": "0"}, stdout
    assert stripe_emulator.count("POST", "/v1/prices/:id") == 0
    assert stripe_emulator.count("POST", "/v1/customers/:id") == 0


def test_a_failing_list_call_ends_with_the_report_and_the_error(stripe_emulator, catalog, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    stripe_emulator.fail("GET", "/v1/prices", status=500)
    message, stdout, stderr = sync_failing()
    assert "could not be synced" in message
    assert "Synchronized." in stdout and "prices" in stdout
    assert "listing prices failed" in stderr and "request req_" in stderr
    # Products went through; customers, which come after, were not tried.
    assert len(stripe_emulator.all("product")) == 2
    assert stripe_emulator.count("GET", "/v1/customers") == 0


def test_dry_run_writes_nothing_and_prints_the_plan(stripe_emulator, catalog, customers):
    stdout, _ = sync("--dry-run")
    assert stripe_emulator.write_calls == 0
    assert stdout.count("would create product") == 2
    assert stdout.count("would create price") == 3
    assert stdout.count("would create customer") == 3
    assert "Dry run: nothing was written." in stdout
    assert not ExternalProduct.objects.exists()
    sync()
    Product.objects.filter(slug="pro").update(name="Renamed")
    stripe_emulator.calls.clear()
    stdout, _ = sync("--dry-run")
    assert stripe_emulator.write_calls == 0
    assert "would update product" in stdout and "name" in stdout


def test_a_run_killed_half_way_then_rerun_leaves_one_object_per_row(stripe_emulator, make_user, settings):
    for _ in range(12):
        make_user()
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}

    class Killed(Exception):
        pass

    # The 7th create reaches Stripe but its answer is lost, then the process dies.
    created = []

    from django_bob_payments.interactors import get_payment_interactor
    from django_bob_payments.services.sync import SyncObserver

    class DieOnFailure(SyncObserver):
        def planned(self, kind, action, description):
            created.append(description)
            if len(created) == 7:
                stripe_emulator.fail("POST", "/v1/customers", drop="after")

        def failed(self, failure):
            raise Killed

    with pytest.raises(Killed):
        get_payment_interactor().synchronize(kinds=("customers",), observer=DieOnFailure())
    assert len(stripe_emulator.all("customer")) == 7
    # Each customer is linked as soon as its create answers: the 6 that answered are.
    assert ExternalCustomer.objects.count() == 6

    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 2}
    sync("--only", "customers")
    remote_ids = sorted(obj["metadata"]["bob_payments_id"] for obj in stripe_emulator.all("customer"))
    assert remote_ids == sorted(str(pk) for pk in Customer.objects.values_list("pk", flat=True))
    assert ExternalCustomer.objects.count() == 12


def test_a_lost_answer_is_retried_with_the_same_idempotency_key(stripe_emulator, customers):
    stripe_emulator.fail("POST", "/v1/customers", drop="after")
    sync("--only", "customers")
    # The SDK retried the create whose answer was lost; Stripe replayed the first answer.
    assert stripe_emulator.count("POST", "/v1/customers") == 4
    assert len(stripe_emulator.all("customer")) == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried(stripe_emulator, catalog, monkeypatch, status):
    monkeypatch.setattr(StripeProvider, "rate_limit_delay", 0.01)
    stripe_emulator.fail("POST", "/v1/products", status=status, times=2)
    stdout, _ = sync("--only", "products")
    assert stripe_emulator.count("POST", "/v1/products") == 4
    assert len(stripe_emulator.all("product")) == 2
    assert stdout.splitlines()[2].split() == ["products", "2", "0", "0", "0", "0"]


def test_a_permanent_error_is_reported_and_the_run_goes_on(stripe_emulator, customers, make_user):
    BillingInformation.objects.filter(customer=customers[0]).update(vat_number="DE-not-a-number")
    make_user()
    message, stdout, stderr = sync_failing("--only", "customers")
    assert "1 object(s) could not be synced" in message
    assert f"customer {customers[0].pk} failed" in stderr
    assert "tax_id_invalid" in stderr
    assert "request req_" in stderr
    assert len(stripe_emulator.all("customer")) == 3
    summary = stdout.splitlines()
    assert summary[2].split() == ["customers", "3", "0", "0", "0", "1"]


def test_an_authentication_error_stops_the_run(stripe_emulator, catalog, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_SECRET_KEY": "sk_test_revoked"}
    stripe_emulator.revoked_keys.add("sk_test_revoked")
    message, _, _ = sync_failing()
    assert "refused our credentials" in message
    assert "STRIPE_SECRET_KEY" in message
    assert "sk_test_revoked" not in message
    assert stripe_emulator.write_calls == 0


def test_a_missing_key_is_a_command_error(stripe_emulator, catalog, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_SECRET_KEY": ""}
    message, _, _ = sync_failing()
    assert "STRIPE_SECRET_KEY" in message


def test_prices_need_their_product_at_stripe(stripe_emulator, catalog):
    message, _, stderr = sync_failing("--only", "prices")
    assert "3 object(s)" in message
    assert "sync products first" in stderr
    assert stripe_emulator.write_calls == 0


def test_an_object_created_outside_the_app_is_left_alone(stripe_emulator, catalog):
    provider = StripeProvider()
    provider.client.v1.products.create({"name": "Made in the dashboard"})
    sync("--only", "products")
    names = sorted((obj["name"], obj["active"]) for obj in stripe_emulator.all("product"))
    assert names == [("Made in the dashboard", True), ("Pro", True), ("Solo", True)]


def test_progress_goes_to_stderr_by_verbosity(stripe_emulator, make_user):
    for _ in range(5):
        make_user()
    _, quiet = sync("--only", "customers", verbosity=0)
    _, normal = sync("--only", "customers", verbosity=1)
    assert quiet == ""
    assert "customers: 5/5 (100%)" in normal


def test_customers_at_stripe_without_a_local_row_are_reported(stripe_emulator, make_user):
    user = make_user()
    sync("--only", "customers")
    # Deleted without the app's receivers, as a raw SQL clean-up would.
    ExternalCustomer.objects.all()._raw_delete("default")
    Customer.objects.filter(pk=user.payment_customers.get().pk)._raw_delete("default")
    stdout, _ = sync("--only", "customers")
    assert "1 customer(s) at the provider have no local row" in stdout
    assert stripe_emulator.count("DELETE") == 0


def test_deleting_a_customer_deletes_it_at_stripe_after_commit(
    stripe_emulator, make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    sync("--only", "customers")
    customer = user.payment_customers.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        customer.delete()
    # Nothing is sent before the transaction commits.
    assert stripe_emulator.count("DELETE") == 0
    for callback in callbacks:
        callback()
    assert stripe_emulator.count("DELETE", "/v1/customers/:id") == 1
    assert stripe_emulator.all("customer") == []
    assert not ExternalCustomer.objects.exists()


def test_deleting_a_product_archives_it_and_its_prices(stripe_emulator, catalog, django_capture_on_commit_callbacks):
    sync()
    (pro, _), _ = catalog
    with django_capture_on_commit_callbacks(execute=True):
        pro.delete()
    assert stripe_emulator.count("DELETE") == 0
    products = {obj["name"]: obj["active"] for obj in stripe_emulator.all("product")}
    assert products == {"Pro": False, "Solo": True}
    prices = sorted((obj["unit_amount"], obj["active"]) for obj in stripe_emulator.all("price"))
    assert prices == [(2900, False), (4900, True), (29000, False)]


def test_a_failed_remote_removal_is_logged_without_secrets(stripe_emulator, make_user, caplog, settings):
    make_user()
    sync("--only", "customers")
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    stripe_emulator.fail("DELETE", "/v1/customers/:id", status=500)
    from django_bob_payments.interactors import get_payment_interactor

    link = ExternalCustomer.objects.get()
    get_payment_interactor().remove_remote_objects("customer", [("stripe", link.external_id)])
    assert len(stripe_emulator.all("customer")) == 1
    assert f"Could not remove customer {link.external_id} at stripe" in caplog.text
    assert "sk_test" not in caplog.text
