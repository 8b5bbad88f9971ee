"""
``processwebhooks --backfill``: after an outage, the events Stripe could not deliver are
listed from its Events API (the emulator's ``GET /v1/events``) and only those never stored
are fed through the inbox.
"""

import datetime
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import Subscription, WebhookEvent
from django_bob_payments.testing import build_event, post_event, stripe_objects
from tests.lifecycle import Lifecycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def lifecycle(customer, catalog):
    return Lifecycle(customer, catalog)


def outage(client, stripe_emulator, events, delivered):
    """Stripe holds every event; only the first ``delivered`` reached the site."""
    for index, event in enumerate(events):
        stripe_emulator.record_event(event, delivered=index < delivered)
        if index < delivered:
            assert post_event(client, event).status_code == 200


def test_only_the_missing_events_are_applied(client, stripe_emulator, lifecycle, capsys):
    outage(client, stripe_emulator, lifecycle.events, delivered=2)
    # An event whose delivery failed but was stored: the inbox has it, the backfill leaves it.
    stripe_emulator.undelivered_events.add(lifecycle.events[1]["id"])
    stripe_emulator.calls.clear()
    call_command("processwebhooks", "--backfill", "--since", "3d")
    assert "Listed 5 event(s): 1 stored already, 4 fed to the inbox." in capsys.readouterr().out
    # One page of the Events API, nothing else.
    assert stripe_emulator.count() == 1
    assert stripe_emulator.count("GET", "/v1/events") == 1
    assert WebhookEvent.objects.count() == 6
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Subscription.objects.get().status == "canceled"
    # The bodies stored are the events as Stripe listed them.
    stored = WebhookEvent.objects.get(event_id=lifecycle.invoice_paid["id"])
    assert stored.payload == lifecycle.invoice_paid
    # A second run finds nothing to feed.
    call_command("processwebhooks", "--backfill", "--since", "3d")
    assert "Listed 5 event(s): 5 stored already, 0 fed to the inbox." in capsys.readouterr().out


def test_pages_are_followed_and_the_oldest_event_goes_first(client, stripe_emulator, lifecycle, settings):
    outage(client, stripe_emulator, lifecycle.events[:1], delivered=1)
    updates = []
    for step in range(230):
        subscription = json.loads(json.dumps(lifecycle.subscription_created["data"]["object"]))
        subscription["items"]["data"][0]["quantity"] = 1 + step % 7
        updates.append(
            build_event(
                "customer.subscription.updated", subscription, created=lifecycle.t0 + 10 + step, event_id=f"evt_u{step}"
            )
        )
    outage(client, stripe_emulator, [lifecycle.subscription_created, *updates], delivered=0)
    stripe_emulator.calls.clear()
    report = get_payment_interactor().backfill_webhook_events(timezone.now() - datetime.timedelta(days=3))
    assert (report.listed, report.known, report.fed, report.failed) == (231, 0, 231, [])
    assert stripe_emulator.count("GET", "/v1/events") == 3  # 100 per page
    # Fed oldest first: the newest update is what the subscription holds.
    assert Subscription.objects.get().quantity == 1 + 229 % 7
    order = list(WebhookEvent.objects.exclude(event_id=lifecycle.customer_created["id"]).order_by("pk"))
    assert [row.event_id for row in order] == [lifecycle.subscription_created["id"]] + [f"evt_u{s}" for s in range(230)]


def test_events_before_since_are_not_listed(client, stripe_emulator, lifecycle):
    old = build_event(
        "customer.created", stripe_objects.customer(id="cus_old", metadata={}), created=1_000_000, event_id="evt_old"
    )
    stripe_emulator.record_event(old, delivered=False)
    call_command("processwebhooks", "--backfill", "--since", "30d", verbosity=0)
    assert not WebhookEvent.objects.filter(event_id="evt_old").exists()


def test_every_event_with_all_events(client, stripe_emulator, lifecycle):
    outage(client, stripe_emulator, lifecycle.events, delivered=6)
    WebhookEvent.objects.filter(event_id=lifecycle.invoice_paid["id"]).delete()  # purged, say
    call_command("processwebhooks", "--backfill", "--since", "12h", "--all-events", verbosity=0)
    assert WebhookEvent.objects.filter(event_id=lifecycle.invoice_paid["id"], status="processed").exists()


def test_in_a_queued_mode_the_backfill_hands_events_to_the_workers(client, stripe_emulator, lifecycle, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "WEBHOOK_PROCESSING": "tasks"}
    outage(client, stripe_emulator, lifecycle.events, delivered=0)
    call_command("processwebhooks", "--backfill", "--since", "3d", verbosity=0)
    # The immediate backend of the Tasks framework ran each task as it was enqueued.
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_an_event_that_waits_is_reported(client, stripe_emulator, lifecycle, capsys):
    unknown = json.loads(json.dumps(lifecycle.subscription_created))
    unknown["data"]["object"]["items"]["data"][0]["price"]["id"] = "price_unknown"
    unknown["data"]["object"]["items"]["data"][0]["price"]["metadata"] = {}
    outage(client, stripe_emulator, [lifecycle.customer_created, unknown], delivered=0)
    with pytest.raises(CommandError, match="1 backfilled event"):
        call_command("processwebhooks", "--backfill", "--since", "3d")
    assert "waiting" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--backfill"], "needs --since"),
        (["--backfill", "--since", "3"], "such as 3d"),
        (["--backfill", "--since", "3w"], "such as 3d"),
        (["--backfill", "--since", "31d"], "30 days"),
        (["--since", "3d"], "go with --backfill"),
    ],
)
def test_backfill_options_are_checked(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("processwebhooks", *arguments)


def test_the_provider_down_is_a_command_error(stripe_emulator):
    stripe_emulator.fail("GET", "/v1/events", status=500, times=10)
    with pytest.raises(CommandError, match="could not be listed"):
        call_command("processwebhooks", "--backfill", "--since", "3d")


def test_a_listed_object_that_is_no_event_is_refused_and_reported(client, stripe_emulator, lifecycle, capsys):
    broken = {**lifecycle.customer_created, "id": "evt_broken", "created": lifecycle.t0 + 50, "type": "Not A Type"}
    outage(client, stripe_emulator, [lifecycle.customer_created, broken], delivered=0)
    with pytest.raises(CommandError, match="1 backfilled event"):
        call_command("processwebhooks", "--backfill", "--since", "3d")
    assert "refused evt_broken: The event's type is not an event type" in capsys.readouterr().err
    # The others were fed.
    assert WebhookEvent.objects.get().event_id == lifecycle.customer_created["id"]
