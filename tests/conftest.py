import pytest
from django.contrib.auth import get_user_model

from django_bob_payments.models import Customer, ExternalPricing, ExternalProduct, Pricing, Product
from tests.testapp.models import Membership, Organization

pytest_plugins = ["tests.shop"]


@pytest.fixture
def make_user(db):
    """Create users with distinct names: make_user(), make_user("bob")."""
    counter = iter(range(1, 10_000))

    def make(username=None, **fields):
        username = username or f"user{next(counter)}"
        fields.setdefault("email", f"{username}@example.com")
        return get_user_model().objects.create_user(username=username, password="pw", **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def organization(db):
    return Organization.objects.create(name="Acme")


@pytest.fixture
def make_member(organization):
    def make(user, role):
        return Membership.objects.create(organization=organization, user=user, role=role)

    return make


@pytest.fixture
def product(db):
    return Product.objects.create(
        slug="pro", name="Pro", limits={"projects": 10, "seats": 5}, features=["api"], max_quantity=5
    )


@pytest.fixture
def monthly(product):
    return Pricing.objects.create(
        product=product, amount=1900, currency="eur", type=Pricing.Type.RECURRING, interval="month"
    )


@pytest.fixture(scope="session")
def stripe_server():
    """One emulated Stripe API for the whole session, on a free loopback port."""
    from tests.stripe_emulator import StripeEmulator

    emulator = StripeEmulator()
    emulator.url = emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def stripe_emulator(stripe_server, settings):
    """The emulated Stripe API, emptied, with the app's settings pointing at it."""
    stripe_server.reset()
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_API_BASE": stripe_server.url}
    return stripe_server


@pytest.fixture(scope="session")
def vies_server():
    """One emulated VIES for the whole session, on a free loopback port."""
    from django_bob_payments.testing.vies import ViesEmulator

    emulator = ViesEmulator()
    emulator.url = emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def vies(vies_server, settings):
    """The emulated VIES, emptied, with the app pointing at it and an empty cache."""
    from django.core.cache import cache

    vies_server.reset()
    cache.clear()
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_API_URL": vies_server.url, "VIES_TIMEOUT": 2}
    return vies_server


@pytest.fixture
def catalog(db):
    """A plan linked to its Stripe product and price, as after synchronizepayments."""
    product = Product.objects.create(slug="pro", name="Pro", limits={"seats": 10}, features=["api"], max_quantity=10)
    pricing = Pricing.objects.create(product=product, amount=1900, currency="eur", type="recurring", interval="month")
    ExternalProduct.objects.create(product=product, provider="stripe", external_id="prod_pro")
    ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id="price_pro_monthly")
    return pricing


@pytest.fixture
def customer(user):
    """The user's customer, made when the user was created."""
    return Customer.objects.get(user=user)


@pytest.fixture
def count_round_trips():
    """
    ``with count_round_trips() as trips:`` counts the round trips to PostgreSQL
    (``trips.count``): the server's answers to a query or to a pipeline's sync, each ending
    with ReadyForQuery, read off libpq's protocol trace.
    """
    import contextlib
    import tempfile

    from django.db import connection

    class Trips:
        count = 0

    @contextlib.contextmanager
    def counting():
        import psycopg

        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        trips = Trips()
        with tempfile.TemporaryFile() as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
            try:
                yield trips
            finally:
                pgconn.untrace()
                trace.seek(0)
                trips.count = sum(1 for line in trace.read().decode().splitlines() if "\tReadyForQuery" in line)

    return counting
