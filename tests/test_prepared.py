"""PreparedQuery: a queryset compiled once gives exactly what the ORM gives, value after value."""

import contextlib
import datetime

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from django_bob_payments.models import (
    Customer,
    ExternalCustomer,
    ExternalPricing,
    ExternalSubscription,
    Subscription,
)
from django_bob_payments.prepared import (
    _SLOW,
    PreparedQuery,
    _adapter,
    forget_prefetched,
    prefetch,
    save_fields,
)

pytestmark = pytest.mark.django_db


def fields(obj):
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


@pytest.fixture
def subscriptions(make_user, monthly):
    ExternalPricing.objects.create(pricing=monthly, provider="stripe", external_id="price_1")
    made = []
    for index in range(3):
        customer = Customer.objects.get(user=make_user())
        subscription = Subscription.objects.create(
            customer=customer,
            pricing=monthly,
            status="active",
            current_period_end=timezone.now() + datetime.timedelta(days=index),
        )
        ExternalSubscription.objects.create(subscription=subscription, provider="stripe", external_id=f"sub_{index}")
        made.append(subscription)
    return made


def test_the_results_are_the_orms_with_related_objects_and_converted_values(subscriptions):
    builds = []

    def build(provider, key):
        builds.append((provider, key))
        return ExternalSubscription.objects.select_related("subscription__pricing__product").filter(
            provider=provider, external_id=key
        )[:1]

    query = PreparedQuery(build)
    for index in (0, 2, 1, 0):
        link = query.first("stripe", f"sub_{index}")
        expected = ExternalSubscription.objects.select_related("subscription__pricing__product").get(
            external_id=f"sub_{index}"
        )
        assert fields(link) == fields(expected)
        # Related objects came with the row: no query to reach the product.
        assert fields(link.subscription) == fields(expected.subscription)
        assert isinstance(link.subscription.current_period_end, datetime.datetime)
        assert link.subscription.current_period_end == subscriptions[index].current_period_end
        assert fields(link.subscription.pricing.product) == fields(expected.subscription.pricing.product)
    assert query.first("stripe", "sub_missing") is None
    assert query.first("fake", "sub_0") is None
    # Built once with stand-ins, then only bound.
    assert len(builds) == 1


def test_integer_values_and_ordering(subscriptions):
    query = PreparedQuery(lambda customer: Subscription.objects.filter(customer_id=customer).order_by("-pk"))
    for subscription in subscriptions:
        assert [found.pk for found in query.all(subscription.customer_id)] == [subscription.pk]
    assert query.all(10**12) == []


def test_related_objects_are_not_queried_again(subscriptions, django_assert_num_queries):
    query = PreparedQuery(
        lambda key: ExternalSubscription.objects.select_related("subscription__pricing__product").filter(
            external_id=key
        )
    )
    query.all("sub_0")
    with django_assert_num_queries(1):
        (link,) = query.all("sub_1")
        assert link.subscription.pricing.product.slug == "pro"


def test_a_value_that_cannot_be_placed_runs_through_the_orm(subscriptions):
    # The value is used twice: the stand-in appears twice among the parameters.
    twice = PreparedQuery(
        lambda key: (
            ExternalSubscription.objects.filter(external_id=key)
            | ExternalSubscription.objects.filter(subscription__customer__external_ids__external_id=key)
        )
    )
    assert [link.external_id for link in twice.all("sub_1")] == ["sub_1"]
    assert twice.all("sub_2")[0].external_id == "sub_2"
    # A lookup that rewrites its value (a LIKE pattern).
    rewritten = PreparedQuery(lambda prefix: ExternalSubscription.objects.filter(external_id__startswith=prefix))
    assert sorted(link.external_id for link in rewritten.all("sub_")) == ["sub_0", "sub_1", "sub_2"]
    assert rewritten.all("nothing") == []


@pytest.mark.django_db(transaction=True)
def test_a_locking_query_outside_a_transaction_fails_as_with_the_orm(subscriptions):
    customer = subscriptions[0].customer
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_1")

    def build(key):
        return Customer.objects.filter(external_ids__external_id=key).select_for_update().order_by()[:1]

    def refused(run):
        try:
            run()
        except TransactionManagementError:
            return True
        return False

    query = PreparedQuery(build)
    # Databases with row locks refuse it outside a transaction; SQLite has none to refuse.
    expected = connection.features.has_select_for_update
    assert refused(lambda: list(build("cus_1"))) is expected
    assert refused(lambda: query.first("cus_1")) is expected
    with transaction.atomic():
        assert query.first("cus_1").pk == customer.pk
    assert refused(lambda: query.first("cus_1")) is expected


def row(obj):
    return fields(type(obj).objects.get(pk=obj.pk))


def test_save_fields_writes_what_save_writes(subscriptions, monkeypatch):
    from django.db.models.signals import post_save, pre_save

    first, second = subscriptions[0], subscriptions[1]
    seen = []

    def listen(sender, instance, update_fields, **kwargs):
        seen.append((kwargs.get("created"), instance.pk, update_fields))

    pre_save.connect(listen, sender=Subscription)
    post_save.connect(listen, sender=Subscription)
    try:
        canceled = timezone.now()
        for subscription in (first, second):
            subscription.status = "past_due"
            subscription.quantity = 4
            subscription.canceled_at = canceled
            subscription.entitlements = {"limits": {"seats": 4}}
        before = second.updated_at
        first.save()
        save_fields(second)
    finally:
        pre_save.disconnect(listen, sender=Subscription)
        post_save.disconnect(listen, sender=Subscription)
    saved, prepared = row(first), row(second)
    for name in ("id", "customer_id", "updated_at", "created_at", "current_period_end"):
        saved.pop(name), prepared.pop(name)
    assert saved == prepared
    assert row(second)["updated_at"] > before  # auto_now, as with save()
    assert row(second)["canceled_at"] == second.canceled_at
    # The signals, as save() sends them.
    assert seen == [(None, first.pk, None), (False, first.pk, None), (None, second.pk, None), (False, second.pk, None)]


def test_save_fields_with_named_fields_leaves_the_others(subscriptions):
    subscription = subscriptions[0]
    subscription.status = "canceled"
    subscription.quantity = 9
    save_fields(subscription, ("status", "updated_at"))
    stored = Subscription.objects.get(pk=subscription.pk)
    assert (stored.status, stored.quantity) == ("canceled", 1)


def test_save_fields_of_a_missing_row_fails_as_save_does(subscriptions):
    from django.db import DatabaseError

    subscription = subscriptions[0]
    Subscription.objects.filter(pk=subscription.pk).update(status="x")
    ExternalSubscription.objects.filter(subscription=subscription).delete()
    Subscription.objects.filter(pk=subscription.pk).delete()
    subscription.status = "active"
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(subscription, ("status",))


def test_save_fields_hands_expressions_to_the_orm(subscriptions):
    from django.db.models import F

    subscription = subscriptions[0]
    subscription.quantity = F("quantity") + 2
    save_fields(subscription, ("quantity",))
    assert Subscription.objects.get(pk=subscription.pk).quantity == 3


def test_insert_row_writes_what_save_writes(django_assert_num_queries):
    from django.db import IntegrityError

    from django_bob_payments.models import WebhookEvent
    from django_bob_payments.prepared import _INSERTS, insert_row

    def event(event_id):
        return WebhookEvent(
            provider="stripe", event_id=event_id, type="t", created=1, body=b"\x00{}\xff", status="pending"
        )

    saved, inserted = event("evt_1"), event("evt_2")
    saved.save(force_insert=True)
    insert_row(event("evt_0"))  # built once
    assert _INSERTS[(WebhookEvent, "default", False)] is not None, "the ORM did the insert"
    with django_assert_num_queries(1):
        insert_row(inserted)
    assert inserted.pk == saved.pk + 2 and not inserted._state.adding
    assert inserted.received_at is not None  # auto_now_add, as with save()
    one, two = fields(WebhookEvent.objects.get(pk=saved.pk)), fields(WebhookEvent.objects.get(pk=inserted.pk))
    for name in ("id", "event_id", "received_at"):
        one.pop(name), two.pop(name)
    assert one == two
    assert bytes(WebhookEvent.objects.get(pk=inserted.pk).body) == b"\x00{}\xff"
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_row(event("evt_2"))


LINK = PreparedQuery(
    lambda key: ExternalSubscription.objects.select_related("subscription").filter(external_id=key).order_by()[:1]
)
LOCKED = PreparedQuery(lambda pk: Customer.objects.select_for_update().filter(pk=pk).order_by()[:1])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pipeline mode is psycopg 3's, on PostgreSQL")
def test_prefetched_rows_are_taken_once_with_no_query_more(subscriptions, django_assert_num_queries):
    customer = subscriptions[1].customer_id
    with transaction.atomic():
        # The lock, then two lookups: sent together, the lookups read once the lock was granted.
        with django_assert_num_queries(3):
            prefetch([(LOCKED, (customer,)), (LINK, ("sub_1",)), (LINK, ("sub_missing",))])
        with django_assert_num_queries(0):
            assert LOCKED.first(customer).pk == customer
            link = LINK.first("sub_1")
            assert LINK.first("sub_missing") is None
        assert fields(link) == fields(ExternalSubscription.objects.get(external_id="sub_1"))
        assert fields(link.subscription) == fields(subscriptions[1])
        # Taken once: asked again, the query runs.
        with django_assert_num_queries(1):
            assert LINK.first("sub_1").pk == link.pk
        prefetch([(LINK, ("sub_2",))])
        forget_prefetched()
        with django_assert_num_queries(1):
            assert LINK.first("sub_2").subscription_id == subscriptions[2].pk


@pytest.mark.skipif(connection.vendor == "postgresql", reason="elsewhere than PostgreSQL")
def test_prefetch_does_nothing_where_statements_go_one_by_one(subscriptions, django_assert_num_queries):
    with transaction.atomic():
        with django_assert_num_queries(0):
            prefetch([(LINK, ("sub_1",))])
        with django_assert_num_queries(1):
            assert LINK.first("sub_1").subscription_id == subscriptions[1].pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pipeline mode is psycopg 3's, on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_prefetched_lock_outside_a_transaction_is_refused(subscriptions):
    with pytest.raises(TransactionManagementError):
        prefetch([(LOCKED, (subscriptions[0].customer_id,))])


# Writes held back (deferred_writes): sent with the next statement, in one round trip.

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pipeline mode is psycopg 3's, on PostgreSQL"
)


@on_postgresql
def test_held_back_writes_go_with_the_next_statement(subscriptions, count_round_trips):
    from django.test.utils import CaptureQueriesContext

    from django_bob_payments.prepared import deferred_writes

    first, second = subscriptions[0], subscriptions[1]
    with transaction.atomic(), deferred_writes():
        first.status, second.quantity = "past_due", 7
        with CaptureQueriesContext(connection) as held, count_round_trips() as trips:
            save_fields(first, ("status", "updated_at"))
            save_fields(second, ("quantity", "updated_at"))
            assert len(held) == 0, "sent at once"
            # The read sees both writes: they went first, in the same round trip.
            assert LINK.first("sub_0").subscription.status == "past_due"
        assert trips.count == 1
        assert [query["sql"].split()[0] for query in held] == ["UPDATE", "UPDATE", "SELECT"]
        assert Subscription.objects.get(pk=second.pk).quantity == 7


@on_postgresql
def test_held_back_writes_are_sent_when_the_block_ends(subscriptions):
    from django.test.utils import CaptureQueriesContext

    from django_bob_payments.prepared import deferred_writes

    subscription = subscriptions[0]
    with transaction.atomic():
        with CaptureQueriesContext(connection) as sent, deferred_writes():
            subscription.quantity = 5
            save_fields(subscription, ("quantity", "updated_at"))
            assert len(sent) == 0
        assert [query["sql"].split()[0] for query in sent] == ["UPDATE"]
        assert Subscription.objects.get(pk=subscription.pk).quantity == 5
    # A block left by an exception sends nothing: its transaction rolls back.
    with CaptureQueriesContext(connection) as sent:
        with pytest.raises(RuntimeError), transaction.atomic(), deferred_writes():
            subscription.quantity = 6
            save_fields(subscription, ("quantity", "updated_at"))
            raise RuntimeError("rolled back, and never sent")
    assert not [query for query in sent if query["sql"].startswith("UPDATE")]
    assert Subscription.objects.get(pk=subscription.pk).quantity == 5


@on_postgresql
def test_a_held_back_update_of_a_missing_row_fails_with_the_next_statement(subscriptions):
    from django.db import DatabaseError
    from django.db.models.signals import post_save

    from django_bob_payments.prepared import deferred_writes

    gone = subscriptions[0]
    ExternalSubscription.objects.filter(subscription=gone).delete()
    Subscription.objects.filter(pk=gone.pk).delete()
    saved = []

    def listen(instance, **kwargs):
        saved.append(instance.pk)

    post_save.connect(listen, sender=Subscription)
    try:
        with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic(), deferred_writes():
            gone.status = "canceled"
            save_fields(gone, ("status",))
            LINK.first("sub_1")
    finally:
        post_save.disconnect(listen, sender=Subscription)
    assert saved == []


@on_postgresql
def test_a_held_back_insert_gets_its_key_and_signal_with_the_next_statement(subscriptions):
    from django.db.models.signals import post_save

    from django_bob_payments.prepared import deferred_writes, insert_row

    created = []

    def listen(instance, **kwargs):
        created.append(instance.pk)

    post_save.connect(listen, sender=ExternalCustomer)
    try:
        with transaction.atomic(), deferred_writes():
            link = ExternalCustomer(customer=subscriptions[0].customer, provider="stripe", external_id="cus_new")
            insert_row(link, defer=True)
            assert (link.pk, created) == (None, [])
            assert ExternalCustomer.objects.filter(external_id="cus_new").count() == 1
            assert link.pk is not None and not link._state.adding
            assert created == [link.pk]
    finally:
        post_save.disconnect(listen, sender=ExternalCustomer)


def test_a_prepared_update_updates_what_the_orms_update_does(subscriptions, django_assert_num_queries):
    from django_bob_payments.prepared import PreparedUpdate

    builds = []

    def build(customer, status):
        builds.append(customer)
        return Subscription.objects.filter(customer_id=customer, status="active"), {"status": status}

    update = PreparedUpdate(build)
    first, second, third = subscriptions
    update.run(first.customer_id, "past_due")
    with django_assert_num_queries(1):
        update.run(second.customer_id, "unpaid")
    update.run(second.customer_id, "canceled")  # not active any more: nothing to update
    statuses = [Subscription.objects.get(pk=sub.pk).status for sub in subscriptions]
    assert statuses == ["past_due", "unpaid", "active"]
    assert len(builds) == 1, "built once with stand-ins, then only bound"
    # A value that cannot be bound goes through the ORM's update.
    PreparedUpdate(lambda pk, quantity: (Subscription.objects.filter(pk=pk), {"quantity": quantity})).run(third.pk, 1.0)
    assert Subscription.objects.get(pk=third.pk).quantity == 1


@on_postgresql
def test_a_prepared_update_is_held_back_too(subscriptions, count_round_trips):
    from django_bob_payments.prepared import PreparedUpdate, deferred_writes

    update = PreparedUpdate(lambda pk, quantity: (Subscription.objects.filter(pk=pk), {"quantity": quantity}))
    with transaction.atomic(), deferred_writes():
        with count_round_trips() as trips:
            for subscription in subscriptions:
                update.run(subscription.pk, 3)
            update.run(-1, 4)  # no row: nothing to tell
            quantities = sorted(Subscription.objects.values_list("quantity", flat=True))
        assert trips.count == 1
    assert quantities == [3, 3, 3]


@on_postgresql
def test_a_handler_writes_integrity_error_is_not_the_events_duplicate(subscriptions):
    from django.db import IntegrityError

    from django_bob_payments.models import WebhookEvent
    from django_bob_payments.prepared import deferred_writes, insert_row
    from django_bob_payments.services.webhooks import _is_event_duplicate

    def event():
        return WebhookEvent(provider="stripe", event_id="evt_dup", type="t", created=1, body=b"{}", status="processed")

    insert_row(event())
    taken = ExternalSubscription.objects.first()
    errors = []
    for clash in (True, False):
        with pytest.raises(IntegrityError) as raised, transaction.atomic(), deferred_writes():
            if clash:  # a write sent with the event's insert fails first
                link = ExternalSubscription(
                    subscription=taken.subscription, provider="stripe", external_id=taken.external_id
                )
                insert_row(link, defer=True)
            insert_row(event())
        errors.append(_is_event_duplicate(raised.value))
    assert errors == [False, True]


@pytest.mark.django_db(transaction=True)
def test_writes_are_not_held_back_outside_a_transaction_or_elsewhere(subscriptions, django_assert_num_queries):
    from django_bob_payments.prepared import deferred_writes

    subscription = subscriptions[0]
    subscription.quantity = 8
    with deferred_writes(), django_assert_num_queries(1):  # not in a transaction: written at once
        save_fields(subscription, ("quantity", "updated_at"))
    if connection.vendor != "postgresql":
        with transaction.atomic(), deferred_writes(), django_assert_num_queries(1):
            save_fields(subscription, ("quantity", "updated_at"))
    assert Subscription.objects.get(pk=subscription.pk).quantity == 8


@on_postgresql
def test_the_statements_run_often_are_prepared_by_the_server(subscriptions, settings):
    # The test settings prepare from the second run (prepare_threshold 1); Django's default,
    # None, prepares nothing.
    query = PreparedQuery(lambda key: ExternalSubscription.objects.filter(external_id=key).order_by()[:1])

    def prepared():
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return [statement for (statement,) in cursor.fetchall() if "bob_payments_externalsubscription" in statement]

    assert connection.settings_dict["OPTIONS"].get("prepare_threshold") == 1
    for key in ("sub_0", "sub_1", "sub_2"):
        assert query.first(key).external_id == key
    assert len(prepared()) == 1
    threshold = connection.connection.prepare_threshold
    connection.connection.prepare_threshold = None
    try:
        other = PreparedQuery(lambda key: ExternalSubscription.objects.filter(external_id=key).order_by("pk")[:1])
        for key in ("sub_0", "sub_1", "sub_2"):
            assert other.first(key).external_id == key
        assert len(prepared()) == 1
    finally:
        connection.connection.prepare_threshold = threshold


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_last_writes_go_with_the_commit(subscriptions, count_round_trips):
    from django.test.utils import CaptureQueriesContext

    from django_bob_payments.prepared import deferred_writes

    subscription = subscriptions[0]
    committed = []
    with CaptureQueriesContext(connection) as logged, count_round_trips() as trips:
        with transaction.atomic(), deferred_writes(commit=True):
            subscription.quantity = 6
            save_fields(subscription, ("quantity", "updated_at"))
            transaction.on_commit(lambda: committed.append(True))
    # BEGIN, the UPDATE and the COMMIT in one round trip; Django logs its COMMIT, which found it done.
    assert trips.count == 1
    assert [query["sql"].split()[0] for query in logged] == ["BEGIN", "UPDATE", "COMMIT"]
    assert committed == [True]
    assert not connection.in_atomic_block and connection.get_autocommit()
    connection.close()  # read from a new connection: committed indeed
    assert Subscription.objects.get(pk=subscription.pk).quantity == 6


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_commit_is_left_to_the_outer_transaction(subscriptions):
    from django_bob_payments.prepared import deferred_writes

    subscription = subscriptions[0]
    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction.atomic(), deferred_writes(commit=True):  # a savepoint: nothing to commit
            subscription.quantity = 7
            save_fields(subscription, ("quantity", "updated_at"))
        raise RuntimeError("the outer transaction rolls back")
    assert Subscription.objects.get(pk=subscription.pk).quantity == 1
    # A transaction marked for rollback is not committed either, and its held writes are
    # not lost without a word.
    with pytest.raises(TransactionManagementError), transaction.atomic(), deferred_writes(commit=True):
        subscription.quantity = 8
        save_fields(subscription, ("quantity", "updated_at"))
        transaction.set_rollback(True)
    assert Subscription.objects.get(pk=subscription.pk).quantity == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_an_error_of_the_commit_rolls_back_the_block(subscriptions):
    from django.db import IntegrityError

    from django_bob_payments.models import Pricing
    from django_bob_payments.prepared import deferred_writes

    subscription = subscriptions[0]
    with pytest.raises(IntegrityError), transaction.atomic(), deferred_writes(commit=True):
        subscription.quantity = 9
        save_fields(subscription, ("quantity", "updated_at"))
        # Foreign keys are checked at the COMMIT (deferred): this one names no pricing.
        subscription.pricing_id = Pricing.objects.order_by("-pk").first().pk + 100
        save_fields(subscription, ("pricing", "updated_at"))
    assert not connection.in_atomic_block
    stored = Subscription.objects.get(pk=subscription.pk)
    assert (stored.quantity, stored.pricing_id) == (1, subscriptions[1].pricing_id)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_held_writes_error_caught_by_other_code_does_not_let_the_transaction_commit(subscriptions):
    from django.db import IntegrityError

    from django_bob_payments.prepared import deferred_writes, insert_row, send_held_writes

    taken = ExternalSubscription.objects.first()
    customer = subscriptions[0].customer

    def clashing_link():
        return ExternalSubscription(subscription=taken.subscription, provider="stripe", external_id=taken.external_id)

    # Code that catches the IntegrityError of its own insert also caught the held write's,
    # sent with it: the transaction cannot go on, and the block does not end as if all was well.
    with pytest.raises(TransactionManagementError), transaction.atomic(), deferred_writes(commit=True):
        subscriptions[0].quantity = 4
        save_fields(subscriptions[0], ("quantity", "updated_at"))
        insert_row(clashing_link(), defer=True)
        try:
            ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_other")
        except IntegrityError:
            pass
    assert Subscription.objects.get(pk=subscriptions[0].pk).quantity == 1
    assert not ExternalCustomer.objects.filter(external_id="cus_other").exists()
    # send_held_writes() first: the error is raised where it belongs, before the other code's.
    with pytest.raises(IntegrityError), transaction.atomic(), deferred_writes(commit=True):
        insert_row(clashing_link(), defer=True)
        send_held_writes()
        pytest.fail("the held write's error is raised by send_held_writes")
    # Elsewhere, or with nothing held, it does nothing.
    send_held_writes()


def _values():
    """What fields are handed: what the app writes, and what it never should."""
    aware = datetime.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=datetime.timezone.utc)
    paris = aware.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    return [None, "", "text", 0, 7, 2**40, -3, True, False, aware, paris, aware.replace(tzinfo=None)]


@pytest.mark.parametrize(
    "model", sorted(apps.get_app_config("bob_payments").get_models(), key=lambda model: model.__name__)
)
def test_field_adapters_give_what_get_db_prep_save_gives(model):
    """Each value an adapter prepares is what Django prepares, of the same type, on this database."""
    fast = 0
    for field in model._meta.concrete_fields:
        adapt = _adapter(field)
        for value in _values():
            try:
                expected = field.get_db_prep_save(value, connection=connection)
            except Exception as err:  # a key of 0 on MySQL, say: refused the same way, or left to Django
                with contextlib.suppress(type(err)):
                    assert adapt(value, connection.ops) is _SLOW, (field, value)
                continue
            prepared = adapt(value, connection.ops)
            if prepared is not _SLOW:
                fast += 1
                assert (type(prepared), prepared) == (type(expected), expected), (field, value)
    # Every model has fields the adapters take (the key, at least, is a foreign key or an integer).
    assert fast


@on_postgresql
@pytest.mark.parametrize(
    "literal",
    [
        "2026-12-04 01:02:03.123456+00",
        "2026-12-04 01:02:03+00",
        "2026-12-04 01:02:03.5+00",
        "0001-01-01 00:00:00+00",
        "9999-12-31 23:59:59.999999+00",
        "2026-12-04 01:02:03+05:30",  # another session time zone: Django's loader reads it
        "2026-12-04 01:02:03+00 BC",
    ],
)
def test_statement_cursors_read_timestamps_as_django_reads_them(literal):
    from django_bob_payments.prepared import statement_cursor

    sql = "SELECT %s::timestamptz"

    def read(cursor):
        with cursor:
            try:
                cursor.execute(sql, [literal])
                return cursor.fetchone()[0]
            except Exception as err:
                return type(err)

    with connection.cursor() as cursor:
        # The session's zone gives the offset PostgreSQL prints: UTC on Django's connections.
        zone = "Asia/Kolkata" if "+05:30" in literal else "UTC"
        cursor.execute(f"SET TIME ZONE '{zone}'")
    try:
        expected = read(connection.cursor())
        got = read(statement_cursor(connection))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert (type(got), got) == (type(expected), expected)
    if isinstance(got, datetime.datetime):
        assert got.tzinfo is datetime.timezone.utc


@on_postgresql
@pytest.mark.skipif(
    __import__("sys").version_info < (3, 11), reason="fromisoformat reads PostgreSQL's offsets from Python 3.11"
)
def test_statement_cursors_read_utc_timestamps_without_djangos_loader(monkeypatch):
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    from django_bob_payments.prepared import statement_cursor

    calls = []
    monkeypatch.setattr(BaseTzLoader, "load", lambda self, data: calls.append(data))
    with statement_cursor(connection) as cursor:
        cursor.execute("SELECT %s::timestamptz, %s::timestamptz", ["2026-12-04 01:02:03+00", "infinity"])
        first, _ = cursor.fetchone()
    assert first == datetime.datetime(2026, 12, 4, 1, 2, 3, tzinfo=datetime.timezone.utc)
    assert calls == [b"infinity"]  # only what fromisoformat cannot read goes to Django's loader


def test_a_deferred_writes_block_pins_its_connection_for_its_thread_only():
    import threading

    from django.db import connections

    from django_bob_payments.prepared import _connection, _pinned, deferred_writes

    held = connections["default"]

    seen = []
    with transaction.atomic(), deferred_writes():
        assert _pinned.default is held
        with deferred_writes():
            assert _connection("default") is held
        assert _pinned.default is held  # the inner block left the outer one's pin
        thread = threading.Thread(target=lambda: seen.append(getattr(_pinned, "default", None)))
        thread.start()
        thread.join()
    assert seen == [None]
    assert getattr(_pinned, "default", None) is None


@on_postgresql
def test_the_cursors_of_a_round_trip_serve_again_in_the_next(subscriptions):
    """psycopg's cursors for the statements of a round trip are made once, and read right each time."""
    from django_bob_payments import prepared
    from django_bob_payments.prepared import deferred_writes

    made = []
    statement_cursor = prepared._statement_cursor_class()
    original = statement_cursor.__init__

    def counting(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    def round_trips():
        with transaction.atomic(), deferred_writes():
            for index, subscription in enumerate(subscriptions):
                subscription.quantity = index + 1 + len(made)
                save_fields(subscription, ("quantity", "updated_at"))
            prefetch([(LINK, (f"sub_{index}",)) for index in range(3)])
            return [LINK.first(f"sub_{index}").subscription.quantity for index in range(3)]

    round_trips()  # the cursors are made
    statement_cursor.__init__ = counting
    try:
        for _ in range(3):
            expected = [index + 1 + len(made) for index in range(3)]
            # Each read sees its own round trip's writes, not an earlier one's rows.
            assert round_trips() == expected
            assert [s.quantity for s in Subscription.objects.order_by("pk")] == expected
    finally:
        statement_cursor.__init__ = original
    assert made == []


@on_postgresql
def test_a_receiver_that_reads_while_the_writes_are_read_back_takes_other_cursors(subscriptions):
    """A post_save receiver of a held insert prefetches: the next insert still gets its own key."""
    from django.db.models.signals import post_save

    from django_bob_payments.prepared import deferred_writes, insert_row

    seen = []

    def listen(instance, **kwargs):
        if instance.external_id == "cus_a":
            prefetch([(LINK, ("sub_1",)), (LINK, ("sub_2",))])
            seen.extend(LINK.first(f"sub_{index}").subscription_id for index in (1, 2))

    post_save.connect(listen, sender=ExternalCustomer)
    try:
        with transaction.atomic(), deferred_writes():
            first = ExternalCustomer(customer=subscriptions[0].customer, provider="stripe", external_id="cus_a")
            second = ExternalCustomer(customer=subscriptions[1].customer, provider="fake", external_id="cus_b")
            insert_row(first, defer=True)
            insert_row(second, defer=True)
            assert LINK.first("sub_0").subscription_id == subscriptions[0].pk
    finally:
        post_save.disconnect(listen, sender=ExternalCustomer)
    assert seen == [subscriptions[1].pk, subscriptions[2].pk]
    assert ExternalCustomer.objects.get(pk=first.pk).external_id == "cus_a"
    assert ExternalCustomer.objects.get(pk=second.pk).external_id == "cus_b"


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_new_connection_makes_its_own_cursors(subscriptions):
    from django_bob_payments.prepared import deferred_writes

    for _ in range(2):
        with transaction.atomic(), deferred_writes(commit=True):
            subscriptions[0].quantity += 1
            save_fields(subscriptions[0], ("quantity", "updated_at"))
            prefetch([(LINK, ("sub_0",))])
            assert LINK.first("sub_0").subscription.quantity == subscriptions[0].quantity
        connection.close()
    assert Subscription.objects.get(pk=subscriptions[0].pk).quantity == subscriptions[0].quantity


@on_postgresql
def test_a_key_read_before_lets_a_row_and_its_update_be_held_back(subscriptions):
    """NextKey: the row is inserted with the key read, with nothing to wait for; then the key is spent."""
    from django.db.models.signals import post_save
    from django.test.utils import CaptureQueriesContext

    from django_bob_payments.prepared import NextKey, deferred_writes, insert_row

    next_key = NextKey(ExternalCustomer)
    saved = []

    def listen(instance, created, update_fields, **kwargs):
        saved.append((instance.pk, created, update_fields))

    post_save.connect(listen, sender=ExternalCustomer)
    try:
        with transaction.atomic(), deferred_writes():
            prefetch([(next_key, ())])
            key = next_key.take()
            assert isinstance(key, int) and next_key.take() is None
            link = ExternalCustomer(
                pk=key, customer=subscriptions[0].customer, provider="stripe", external_id="cus_keyed"
            )
            with CaptureQueriesContext(connection) as sent:
                insert_row(link, defer=True)
                assert not link._state.adding  # it exists for the statements after it
                link.last_event_id = "evt_1"
                save_fields(link, ("last_event_id", "updated_at"))
                assert len(sent) == 0, "both held back"
                assert ExternalCustomer.objects.get(external_id="cus_keyed").last_event_id == "evt_1"
            assert [query["sql"].split()[0] for query in sent] == ["INSERT", "UPDATE", "SELECT"]
    finally:
        post_save.disconnect(listen, sender=ExternalCustomer)
    assert link.pk == key and ExternalCustomer.objects.get(pk=key).external_id == "cus_keyed"
    assert saved == [(key, True, None), (key, False, frozenset({"last_event_id", "updated_at"}))]
    # The sequence goes on after the key: the next row the ORM makes takes another one.
    other = ExternalCustomer.objects.create(customer=subscriptions[1].customer, provider="stripe", external_id="cus_o")
    assert other.pk > key


@pytest.mark.skipif(connection.vendor == "postgresql", reason="elsewhere than PostgreSQL")
def test_no_key_is_read_where_statements_go_one_by_one(subscriptions):
    from django_bob_payments.prepared import NextKey

    next_key = NextKey(ExternalCustomer)
    with transaction.atomic():
        prefetch([(next_key, ())])
        assert next_key.take() is None
