"""
``reconcilebilling``: the local subscriptions, corrupted on purpose, are compared with the
emulated Stripe's in pages and repaired through the webhook inbox with one request per 100
subscriptions; a second run finds nothing.
"""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from django_bob_payments.models import ExternalSubscription, Subscription, SubscriptionItem, WebhookEvent
from tests.shop import buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def bought(shop, stripe_emulator, make_user):
    """Three customers, each with a subscription bought through checkout and its webhooks."""
    remote = []
    for index, pricing in enumerate(("pro_monthly", "team_monthly", "pro_yearly")):
        client = Client()
        client.force_login(make_user(f"buyer{index}"))
        _, subscription = buy(client, stripe_emulator, shop[pricing], quantity=index + 1)
        remote.append(subscription["id"])
    stripe_emulator.calls.clear()
    return remote


def local(external_id):
    return ExternalSubscription.objects.select_related("subscription").get(external_id=external_id).subscription


def test_drift_is_reported_then_repaired_with_one_request_per_page(bought, stripe_emulator, capsys):
    first, second, third = bought
    expected = {external_id: (local(external_id).status, local(external_id).quantity) for external_id in bought}
    # Corrupted on purpose: a status and a cancellation, an item's quantity, a lost record.
    Subscription.objects.filter(pk=local(first).pk).update(status="past_due", cancel_at_period_end=True)
    SubscriptionItem.objects.filter(subscription=local(second)).update(quantity=7)
    Subscription.objects.filter(pk=local(third).pk).delete()

    call_command("reconcilebilling")
    out = capsys.readouterr().out
    assert f"{first}: status past_due -> active; cancel_at_period_end True -> False" in out
    assert f"{second}: items" in out
    assert f"{third}: not recorded locally" in out
    assert "Compared 3 subscription(s) and 0 invoice(s): 3 differ, 0 not at the provider." in out
    # A page of subscriptions and one of invoices, nothing else.
    assert stripe_emulator.count() == 2 and stripe_emulator.count("GET", "/v1/subscriptions") == 1
    assert local(first).status == "past_due"  # only reported

    call_command("reconcilebilling", "--apply")
    out = capsys.readouterr().out
    assert "Compared 3 subscription(s) and 0 invoice(s): 3 differ, 3 repaired, 0 not at the provider." in out
    assert stripe_emulator.count() == 4  # a page of each more, nothing else
    for external_id, (status, quantity) in expected.items():
        subscription = local(external_id)
        assert (subscription.status, subscription.quantity, subscription.cancel_at_period_end) == (
            status,
            quantity,
            False,
        )
    assert SubscriptionItem.objects.get(subscription=local(second)).quantity == 2
    # Repaired through the inbox: an audit record per repair.
    repairs = WebhookEvent.objects.filter(event_id__startswith="evt_reconcile_")
    assert sorted(repairs.values_list("status", flat=True)) == ["processed"] * 3

    call_command("reconcilebilling", "--apply")
    assert (
        "Compared 3 subscription(s) and 0 invoice(s): 0 differ, 0 repaired, 0 not at the provider."
        in capsys.readouterr().out
    )


def test_a_change_at_stripe_whose_webhook_was_lost_is_caught(bought, stripe_emulator, capsys):
    remote = next(obj for obj in stripe_emulator.all("subscription") if obj["id"] == bought[0])
    remote["cancel_at_period_end"] = True  # changed in the dashboard; the webhook never came
    call_command("reconcilebilling", "--apply")
    assert "1 differ, 1 repaired" in capsys.readouterr().out
    assert local(bought[0]).cancel_at_period_end is True


def test_a_local_subscription_stripe_does_not_list_is_reported(bought, stripe_emulator, capsys):
    del stripe_emulator.objects["subscription"][bought[1]]
    call_command("reconcilebilling")
    out = capsys.readouterr().out
    assert f"{bought[1]}: recorded locally, not listed by the provider" in out
    assert "1 not at the provider" in out


def test_an_ended_subscription_is_not_revived(bought, stripe_emulator, capsys):
    Subscription.objects.filter(pk=local(bought[0]).pk).update(status="canceled")
    with pytest.raises(CommandError, match="1 object"):
        call_command("reconcilebilling", "--apply")
    assert "not repaired" in capsys.readouterr().out
    assert local(bought[0]).status == "canceled"


def test_many_pages(shop, stripe_emulator, bought, capsys):
    template = next(obj for obj in stripe_emulator.all("subscription") if obj["id"] == bought[0])
    for index in range(250):
        copy = {**template, "id": f"sub_many{index}"}
        stripe_emulator.objects["subscription"][copy["id"]] = copy
    stripe_emulator.calls.clear()
    call_command("reconcilebilling")
    assert "Compared 253 subscription(s) and 0 invoice(s): 250 differ" in capsys.readouterr().out
    assert stripe_emulator.count("GET", "/v1/subscriptions") == 3


def test_stripe_down_is_a_command_error(bought, stripe_emulator):
    stripe_emulator.fail("GET", "/v1/subscriptions", status=500, times=10)
    with pytest.raises(CommandError, match="could not be listed"):
        call_command("reconcilebilling")


def test_invoices_are_reconciled_through_the_invoice_handler(bought, stripe_emulator, capsys):
    from django_bob_payments.models import Invoice
    from django_bob_payments.testing import stripe_objects
    from tests.shop import deliver

    subscription = next(obj for obj in stripe_emulator.all("subscription") if obj["id"] == bought[0])
    customer_id = subscription["customer"]

    def invoice(invoice_id, status):
        return stripe_objects.invoice(
            customer_id,
            id=invoice_id,
            subscription_id=subscription["id"],
            total=1900,
            status=status,
            subscription_metadata=subscription["metadata"],
        )

    client = Client()
    delivered = stripe_emulator.put("invoice", invoice("in_delivered", "paid"))
    deliver(client, "invoice.paid", delivered)
    # Its amounts corrupted locally; another invoice whose webhooks never came; a void one
    # the site holds as open.
    Invoice.objects.filter(external_id="in_delivered").update(amount_paid=0, total=5)
    stripe_emulator.put("invoice", invoice("in_missed", "paid"))
    voided = stripe_emulator.put("invoice", invoice("in_voided", "open"))
    deliver(client, "invoice.finalized", voided)
    voided.update(status="void", amount_due=0)
    stripe_emulator.calls.clear()

    call_command("reconcilebilling", "--apply")
    out = capsys.readouterr().out
    assert "in_delivered: total 5 -> 1900; amount_paid 0 -> 1900 (repaired)" in out
    assert "in_missed: not recorded locally (repaired)" in out
    assert "in_voided: status open -> void" in out
    assert "Compared 3 subscription(s) and 3 invoice(s): 3 differ, 3 repaired, 0 not at the provider." in out
    assert stripe_emulator.count() == 2
    held = {invoice.external_id: invoice for invoice in Invoice.objects.all()}
    assert (held["in_delivered"].total, held["in_delivered"].amount_paid) == (1900, 1900)
    assert (held["in_missed"].status, held["in_missed"].subscription_id) == ("paid", local(bought[0]).pk)
    assert held["in_voided"].status == "void"
    call_command("reconcilebilling")
    assert "0 differ" in capsys.readouterr().out
