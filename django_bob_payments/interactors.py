"""
The business use cases of django-bob-payments.

Views, commands, the admin and signal receivers call a ``PaymentInteractor`` and nothing
else. A project changes behaviour by subclassing it and naming the subclass in settings::

    # myproject/billing.py
    from django_bob_payments.interactors import PaymentInteractor

    class MyPaymentInteractor(PaymentInteractor):
        def post_user_created(self, user):
            customer = super().post_user_created(user)
            ...
            return customer

    # settings.py
    BOB_PAYMENTS = {"PAYMENT_INTERACTOR_CLASS": "myproject.billing.MyPaymentInteractor"}

``get_payment_interactor()`` resolves the setting on every call, so ``override_settings``
takes effect at once.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from django_bob_payments import signals
from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import (
    BillingPermissionDenied,
    BobPaymentsError,
    BobPaymentsImproperlyConfigured,
    NotAtProvider,
    ProviderAuthenticationError,
    ProviderError,
    ProviderTimeout,
    PurchaseNotAllowed,
    WebhookVerificationError,
)
from django_bob_payments.models import (
    BillingEmail,
    BillingInformation,
    Customer,
    ExternalCustomer,
    ExternalPricing,
    ExternalSubscription,
    Invoice,
    Order,
    PaymentAttempt,
    PaymentsSite,
    Pricing,
    Subscription,
    WebhookEvent,
)
from django_bob_payments.providers import PaymentProvider, get_provider
from django_bob_payments.providers.base import (
    CUSTOMER_METADATA_KEY,
    ORDER_METADATA_KEY,
    CheckoutRequest,
    ProviderEvent,
)
from django_bob_payments.reports import hide_locals, loggable
from django_bob_payments.services import (
    BillingService,
    CustomerService,
    MailerService,
    OrderService,
    OrganizationService,
    PaymentService,
    PlanService,
    ProductService,
    SubscriptionService,
)
from django_bob_payments.services.events import EventApplier
from django_bob_payments.services.reconcile import (
    INVOICE_EVENT_TYPES,
    Comparer,
    Drift,
    InvoiceComparer,
    ReconcileReport,
    SubscriptionComparer,
)
from django_bob_payments.services.sync import KINDS, ProviderSync, SyncObserver, SyncReport, terms_digest
from django_bob_payments.services.vies import VatCheck
from django_bob_payments.services.webhooks import (
    HEAD_FIELDS,
    ReceiveResult,
    WebhookInbox,
    stored_head,
    synthetic_event,
)

logger = logging.getLogger(__name__)

WEBHOOK_MODES = ("inline", "celery", "tasks")
# How the request of a queued mode hands its event to the task engine.
ENQUEUE_MODES = ("request", "background")

# Seconds a checkout read at the provider is remembered: a session lives at most 24 hours.
CHECKOUT_READ_SECONDS = 24 * 3600
# Seconds between two refreshes of a customer's subscriptions from the provider.
SUBSCRIPTIONS_REFRESH_SECONDS = 60


@dataclasses.dataclass
class CheckoutState:
    """What ``checkout_state`` answers: the checkout's order, its attempt and its subscription."""

    session_id: str
    order: Order
    payment_attempt: PaymentAttempt
    subscription: Subscription | None

    @property
    def state(self) -> str:
        """processing (not settled yet), complete (paid), or the order's end: expired, failed, canceled."""
        if self.order.status == Order.Status.PAID:
            return "complete"
        if self.order.status == Order.Status.PENDING:
            return "processing"
        return str(self.order.status)


@dataclasses.dataclass
class BackfillReport:
    """What ``backfill_webhook_events`` found: events listed, already stored, fed to the inbox."""

    listed: int = 0
    known: int = 0
    fed: int = 0
    failed: list[WebhookEvent] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)


def webhook_processing() -> str:
    """The WEBHOOK_PROCESSING mode, its engine checked: an error names what to install."""
    mode = bob_settings.WEBHOOK_PROCESSING
    if mode not in WEBHOOK_MODES:
        raise BobPaymentsImproperlyConfigured(
            f'BOB_PAYMENTS["WEBHOOK_PROCESSING"] is {mode!r}; it must be one of {", ".join(WEBHOOK_MODES)}.'
        )
    if mode != "inline" and (missing := missing_engine(mode)):
        raise BobPaymentsImproperlyConfigured(missing)
    return mode


def missing_engine(mode: str) -> str:
    """Why the task engine of ``mode`` cannot be used here, or ""."""
    import importlib.util

    if mode == "celery" and importlib.util.find_spec("celery") is None:
        return (
            'BOB_PAYMENTS["WEBHOOK_PROCESSING"] is "celery", but Celery is not installed: '
            "pip install django-bob-payments[celery]"
        )
    if mode == "tasks" and not (importlib.util.find_spec("django.tasks") or importlib.util.find_spec("django_tasks")):
        return (
            'BOB_PAYMENTS["WEBHOOK_PROCESSING"] is "tasks", but this Django has no Tasks framework '
            "(Django 6.0 or later has it): pip install django-bob-payments[tasks]"
        )
    return ""


@hide_locals
class PaymentInteractor:
    """
    The default business logic. Each service is an attribute a subclass may replace.
    """

    def __init__(self) -> None:
        self.customers = CustomerService()
        self.organizations = OrganizationService()
        self.products = ProductService()
        self.subscriptions = SubscriptionService()
        self.plans = PlanService(self.subscriptions)
        self.orders = OrderService(self.plans)
        self.payments = PaymentService()
        self.billing = BillingService()
        self.mailer = MailerService(self.customers)

    # Users and customers

    def post_user_created(self, user: Any) -> Customer:
        """
        Called once, when a user is created: creates the user's local customer.

        Nothing is sent to the provider here; the customer is pushed when it first buys,
        or by ``synchronizepayments``.
        """
        customer = self.customers.for_user(user)
        signals.customer_created.send(sender=type(self), customer=customer, user=user)
        return customer

    def can_manage_billing(self, user: Any, organization: models.Model) -> bool:
        """Whether ``user`` may manage ``organization``'s billing (see OrganizationService)."""
        return self.organizations.can_manage_billing(user, organization)

    def get_customer(self, user: Any, organization_id: Any = None) -> Customer:
        """
        The customer ``user`` acts for: their own, or the organization's named by
        ``organization_id`` when they may manage its billing.

        Raises BillingPermissionDenied when the organization does not exist or the user may
        not manage it; the two cases are not told apart, so IDs cannot be probed.
        """
        if organization_id in (None, ""):
            return self.customers.for_user(user)
        if self.organizations.get_model() is None:
            raise BillingPermissionDenied("This site does not bill organizations.", code="organizations_disabled")
        organization = self.organizations.get(organization_id)
        if organization is None or not self.can_manage_billing(user, organization):
            raise BillingPermissionDenied(
                "You may not manage this organization's billing.", code="billing_permission_denied"
            )
        return self.customers.for_organization(organization)

    # The provider

    def get_provider(self, name: str | None = None) -> PaymentProvider:
        """
        The payment provider ``name``, by default the configured one (``BOB_PAYMENTS["PROVIDER"]``),
        with this interactor's webhook inbox connected, so that the events a provider
        emits itself (the fake provider's) are applied by the same inbox and handlers.
        """
        provider = get_provider(name)
        provider.event_sink = lambda payload: self.get_webhook_inbox(provider.name).receive(payload)
        return provider

    def synchronize(
        self, kinds: tuple[str, ...] = KINDS, *, dry_run: bool = False, observer: SyncObserver | None = None
    ) -> SyncReport:
        """
        Push local products, prices and customers to the provider (``synchronizepayments``),
        then apply the provider's webhook events that waited, for a price not linked yet, say.
        """
        provider = self.get_provider()
        report = ProviderSync(provider, dry_run=dry_run, observer=observer).run(kinds)
        if not dry_run:
            self.get_webhook_inbox(provider.name).apply_waiting()
        return report

    def remove_remote_objects(self, kind: str, links: list[tuple[str, str]]) -> None:
        """
        Remove the provider objects of a deleted local row, given as (provider, external ID)
        pairs: a ``customer`` is deleted, a ``product`` or ``pricing`` archived. Runs after
        commit; a failure is logged and left to the next ``synchronizepayments``.
        """
        for provider_name, external_id in links:
            try:
                provider = self.get_provider(provider_name)
                if kind == "customer":
                    provider.delete_customer(external_id)
                elif kind == "product":
                    provider.update_product(external_id, {"active": False})
                elif kind == "pricing":
                    provider.update_price(external_id, {"active": False})
            except BobPaymentsError as err:
                logger.warning("Could not remove %s %s at %s: %s", kind, external_id, provider_name, loggable(err))

    # Billing information and VAT

    def create_user_billing_info(
        self, customer: Customer, data: dict[str, Any], verdict: VatCheck | None = None
    ) -> BillingInformation:
        """
        Create or update the customer's billing information, check its VAT number, decide
        its tax status, and push the customer to the provider once the transaction commits.
        The provider being unreachable does not fail the call: the data is saved, shown as
        pending sync, and pushed by the next ``synchronizepayments``.
        """
        billing, needs_check = self.billing.prepare(customer, data)
        if needs_check and verdict is None:
            # VIES is asked before the transaction, never while it holds rows.
            verdict = self.validate_vies(
                billing.vat_number, str(billing.country), use_cache=self.billing.reuses_cached_verdicts
            )
        with transaction.atomic():
            self.billing.save(billing, verdict if needs_check else None)
            transaction.on_commit(lambda: self.sync_customer(customer.pk))
        if not transaction.get_connection().in_atomic_block:
            # Committed, and pushed (or not): the answer says which.
            billing.refresh_from_db(fields=["sync_status", "synced_at"])
        return billing

    def validate_vies(self, vat_number: str, country: str, *, use_cache: bool = True) -> VatCheck:
        """Check a VAT number's format and checksum, then its registration at VIES."""
        return self.billing.check_vat(vat_number, country, use_cache=use_cache)

    def revalidate_vat(self, billing: BillingInformation) -> str:
        """
        Check ``billing``'s VAT number at VIES again (no cache) and re-apply the tax decision;
        push the customer when its tax status changed. Only the verdict is written, under a
        lock on the row, and only if the number and country are still those checked (the
        customer may have changed them meanwhile). Returns the new VAT status, "still
        unverified" when VIES could not answer, or "changed meanwhile".
        """
        verdict = self.validate_vies(billing.vat_number, str(billing.country), use_cache=False)
        if verdict.status == BillingInformation.VatStatus.UNVERIFIED and billing.vat_status != verdict.status:
            # VIES is down: a number it confirmed before keeps its verdict until it answers.
            return "still unverified"
        with transaction.atomic():
            current = BillingInformation.objects.select_for_update().get(pk=billing.pk)
            if (current.vat_number, str(current.country)) != (billing.vat_number, str(billing.country)):
                return "changed meanwhile"
            was_valid = current.vat_status == BillingInformation.VatStatus.VALID
            before = current.tax_exempt
            self.billing.apply_verdict(current, verdict)
            fields = ["vat_number", "vat_status", "vat_verified_at", "vies_consultation_number", "tax_exempt"]
            if current.tax_exempt != before:
                current.sync_status = BillingInformation.SyncStatus.PENDING
                fields.append("sync_status")
                transaction.on_commit(lambda: self.sync_customer(current.customer_id))
            current.save(update_fields=[*fields, "updated_at"])
        if was_valid and current.vat_status == BillingInformation.VatStatus.INVALID:
            signals.vat_number_invalidated.send(sender=type(self), billing_information=current)
        return "still unverified" if verdict.status == BillingInformation.VatStatus.UNVERIFIED else verdict.status

    def check_collected_billing(self, billing: BillingInformation) -> str:
        """
        Check a VAT number the buyer typed in the provider's checkout (recorded from
        ``checkout.session.completed``), decide the tax status, and push the customer when
        it changed: ``revalidate_vat``. Until VIES answers the number stays ``unverified``
        (no reverse charge) and ``revalidatevat`` asks again.
        """
        if not billing.vat_number:
            return billing.vat_status
        return self.revalidate_vat(billing)

    def sync_customer(self, customer_id: int) -> bool:
        """Push one customer to the provider now; False (and logged) when it cannot be reached."""
        customer = Customer.objects.select_related("billing_information", "user").get(pk=customer_id)
        try:
            ProviderSync(self.get_provider()).sync_customer(customer)
        except BobPaymentsError as err:
            logger.warning("Could not push customer %s to the provider: %s", customer_id, loggable(err))
            return False
        BillingInformation.objects.filter(customer_id=customer_id).update(
            sync_status=BillingInformation.SyncStatus.SYNCED, synced_at=timezone.now()
        )
        return True

    # Checkout, portal and subscription changes

    def external_id(self, link_model: type[models.Model], owner: models.Model, what: str) -> str:
        """The provider's ID of ``owner``; NotAtProvider when it has none."""
        provider = self.get_provider().name
        external_id = (
            link_model._default_manager.filter(
                provider=provider, **{link_model.owner_field: owner}, **link_model.live_filter
            )
            .values_list("external_id", flat=True)
            .first()
        )
        if external_id is None:
            raise NotAtProvider(f"This {what} is not at {provider} yet.", code=f"{what}_not_at_provider")
        return external_id

    def ensure_provider_customer(self, customer: Customer) -> str:
        """
        The customer's provider ID, with the provider holding its current billing data and
        tax status: a customer not at the provider yet, or whose billing information is not
        ``synced`` (its last push failed, or has not run), is pushed first. NotAtProvider
        (409, ``customer_not_synced``) when that push fails: a checkout must not use a stale
        tax status.
        """
        billing_synced = (
            BillingInformation.objects.filter(customer=customer).values_list("sync_status", flat=True).first()
        )
        if billing_synced in (None, BillingInformation.SyncStatus.SYNCED):
            try:
                return self.external_id(ExternalCustomer, customer, "customer")
            except NotAtProvider:
                pass
        if not self.sync_customer(customer.pk):
            raise NotAtProvider(
                f"The billing information could not be sent to {self.get_provider().name}; try again.",
                code="customer_not_synced",
            )
        return self.external_id(ExternalCustomer, customer, "customer")

    def ensure_provider_price(self, pricing: Pricing) -> str:
        """
        The provider ID of a price with the pricing's current terms (amount, currency,
        interval). The link records the terms it was pushed with; when the local ones differ
        (the pricing changed since the last sync), the pricing is pushed now. NotAtProvider
        (409, ``pricing_not_synced``) when that push fails.
        """
        provider = self.get_provider()
        link = ExternalPricing.objects.filter(provider=provider.name, pricing=pricing).first()
        if link is not None and link.terms == terms_digest(pricing):
            return link.external_id
        try:
            return ProviderSync(provider).sync_pricing(pricing)
        except ProviderAuthenticationError:
            raise
        except ProviderError as err:
            logger.warning("Could not push pricing %s to %s: %s", pricing.pk, provider.name, loggable(err))
            raise NotAtProvider(
                f"This pricing could not be sent to {provider.name}; try again.", code="pricing_not_synced"
            ) from None

    def checkout_state(self, customer: Customer, session_id: str) -> CheckoutState | None:
        """
        The outcome of one of ``customer``'s checkouts: its order, payment attempt and
        subscription; None when the customer has no checkout of that ID. While the attempt
        is still open (the provider's webhook has not arrived), the provider is asked once
        per session (``retrieve_checkout_session``, shared across processes through the
        cache), and what it says is applied through the webhook inbox as synthetic events:
        the same handlers, idempotency and customer lock. The webhook that comes later
        changes nothing, and sends no second signal.
        """
        attempt = (
            PaymentAttempt.objects.select_related("order")
            .filter(external_id=session_id, order__customer=customer)
            .order_by("-pk")
            .first()
        )
        if attempt is None:
            return None
        if attempt.status in (PaymentAttempt.Status.CREATED, PaymentAttempt.Status.PENDING) and cache.add(
            f"bob_payments:checkout-read:{attempt.provider}:{session_id}", True, CHECKOUT_READ_SECONDS
        ):
            self._apply_checkout_read(attempt.provider, session_id)
            attempt.refresh_from_db()
        order = Order.objects.prefetch_related("payment_attempts").get(pk=attempt.order_id)
        subscription = (
            Subscription.objects.select_related("pricing__product").filter(pk=order.subscription_id).first()
            if order.subscription_id
            else None
        )
        return CheckoutState(session_id=session_id, order=order, payment_attempt=attempt, subscription=subscription)

    def _apply_checkout_read(self, provider_name: str, session_id: str) -> None:
        """Read the session at the provider and feed what it says to the inbox, as its webhooks would."""
        inbox = self.get_webhook_inbox(provider_name)
        session = inbox.provider.retrieve_checkout_session(session_id)
        if session is None:
            return
        subscription = session.get("subscription")
        events: list[tuple[str, dict[str, Any]]] = []
        status = session.get("status")
        if status == "complete":
            if isinstance(subscription, dict):
                session = {**session, "subscription": subscription.get("id")}
            events.append(("checkout.session.completed", session))
            if isinstance(subscription, dict):
                events.append(("customer.subscription.created", subscription))
        elif status == "expired":
            events.append(("checkout.session.expired", session))
        for event_type, obj in events:
            event_id = f"evt_checkout_{obj.get('id')}_{event_type.rsplit('.', 1)[1]}"
            result = inbox.receive(synthetic_event(inbox.provider, event_id, event_type, obj))
            if result.failed or result.waiting:
                logger.warning("The checkout %s read at the provider could not be applied.", session_id)
                return

    def start_checkout(
        self, customer: Customer, pricing: Pricing, quantity: int, success_url: str, cancel_url: str
    ) -> tuple[PaymentAttempt, str]:
        """
        Create a pending order and its payment attempt, then the provider's checkout session;
        returns the attempt and the URL to send the customer to. Raises PurchaseNotAllowed
        (the product's limits), NotAtProvider (the pricing is not synced) or ProviderError.
        """
        self.plans.check_purchase(customer, pricing, quantity, open_checkouts=False)
        price_id = self.ensure_provider_price(pricing)
        customer_id = self.ensure_provider_customer(customer)
        self.expire_open_checkouts(customer, pricing)
        with transaction.atomic():
            # Serializes purchases of one customer, so two tabs cannot both pass the limits.
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            order = self.orders.create(customer, pricing, quantity)
            attempt = self.payments.start_attempt(order, self.get_provider().name)
        metadata = {CUSTOMER_METADATA_KEY: str(customer.pk), ORDER_METADATA_KEY: str(order.pk)}
        request = CheckoutRequest(
            customer_external_id=customer_id,
            price_external_id=price_id,
            quantity=quantity,
            mode="subscription" if pricing.is_recurring else "payment",
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=str(order.pk),
            metadata=metadata,
            idempotency_key=f"bob-payments-{PaymentsSite.current_key()}-checkout-{attempt.pk}",
            trial_period_days=pricing.trial_period_days,
            allow_promotion_codes=bool(bob_settings.CHECKOUT_ALLOW_PROMOTION_CODES),
            automatic_tax=bool(bob_settings.CHECKOUT_AUTOMATIC_TAX),
            tax_id_collection=bool(bob_settings.CHECKOUT_TAX_ID_COLLECTION),
        )
        try:
            session = self.get_provider().create_checkout_session(request)
        except ProviderTimeout as err:
            # No answer: the session may exist at the provider. The attempt stays "created"
            # with the reason, and ``expirecheckouts`` closes whatever was made for it.
            attempt.failure_code = err.code[:64]
            attempt.failure_message = str(err.args[0] if err.args else err)
            attempt.save(update_fields=["failure_code", "failure_message", "updated_at"])
            raise
        except BobPaymentsError as err:
            attempt.status = PaymentAttempt.Status.FAILED
            attempt.failure_code = err.code[:64]
            attempt.failure_message = str(err.args[0] if err.args else err)
            attempt.save(update_fields=["status", "failure_code", "failure_message", "updated_at"])
            order.status = Order.Status.FAILED
            order.save(update_fields=["status", "updated_at"])
            raise
        attempt.external_id = session.external_id
        attempt.status = PaymentAttempt.Status.PENDING
        attempt.save(update_fields=["external_id", "status", "updated_at"])
        return attempt, session.url

    def expire_open_checkouts(self, customer: Customer, pricing: Pricing) -> int:
        """
        Close at the provider the customer's checkout sessions still open for the product
        of ``pricing``, when the product limits subscriptions per customer: an open session
        counts toward the limit until it completes or expires, and the newest checkout
        replaces the older ones. A session paid meanwhile stays pending until its webhook
        (and keeps counting). Returns how many were closed.
        """
        if not pricing.is_recurring or pricing.product.max_subscriptions_per_customer is None:
            return 0
        provider = self.get_provider()
        closed = 0
        for attempt in self.plans.open_checkouts(customer, pricing.product).filter(provider=provider.name):
            if provider.expire_checkout_session(attempt.external_id):
                # The provider's confirmed answer: the session is closed.
                self.payments.close(attempt, PaymentAttempt.Status.EXPIRED, Order.Status.EXPIRED)
                closed += 1
        return closed

    def expire_abandoned_checkouts(self, older_than_minutes: int) -> tuple[int, int]:
        """
        Close what a checkout without an answer left behind (the provider timed out while
        the session was being made): for each attempt still ``created`` after
        ``older_than_minutes``, the customer's open sessions at the provider that name its
        order are expired there, and the attempt and order are marked expired; an attempt
        with no such session is marked failed. Returns (expired, failed).
        """
        provider = self.get_provider()
        cutoff = timezone.now() - datetime.timedelta(minutes=older_than_minutes)
        stale = list(
            PaymentAttempt.objects.filter(
                provider=provider.name,
                status=PaymentAttempt.Status.CREATED,
                created_at__lt=cutoff,
                order__status=Order.Status.PENDING,
            ).select_related("order")
        )
        by_customer: dict[int, list[PaymentAttempt]] = {}
        for attempt in stale:
            by_customer.setdefault(attempt.order.customer_id, []).append(attempt)
        links = dict(
            ExternalCustomer.objects.filter(
                provider=provider.name, customer_id__in=list(by_customer), **ExternalCustomer.live_filter
            ).values_list("customer_id", "external_id")
        )
        expired = failed = 0
        for customer_id, attempts in by_customer.items():
            orders = {str(attempt.order_id): attempt for attempt in attempts}
            sessions = list(provider.iter_open_checkout_sessions(links[customer_id])) if customer_id in links else []
            found: set[str] = set()
            for session_id, order_id in sessions:
                attempt = orders.get(order_id or "")
                if attempt is not None and provider.expire_checkout_session(session_id):
                    found.add(order_id)
                    self.payments.close(
                        attempt, PaymentAttempt.Status.EXPIRED, Order.Status.EXPIRED, external_id=session_id
                    )
                    expired += 1
            for order_id, attempt in orders.items():
                if order_id not in found:
                    self.payments.close(attempt, PaymentAttempt.Status.FAILED, Order.Status.FAILED)
                    failed += 1
        return expired, failed

    def get_customer_management_portal_link(self, customer: Customer, return_url: str) -> str:
        """The provider's customer-portal URL for ``customer``; NotAtProvider when it has none yet."""
        customer_id = self.external_id(ExternalCustomer, customer, "customer")
        return self.get_provider().create_portal_session(customer_id, return_url)

    # Subscription actions. Each checks the subscription's state first (ActionNotAllowed, a
    # 409 with a code, before any provider call), releases a schedule that would refuse or undo
    # it, then asks the provider. The local row is not written: it changes when the provider's
    # webhook arrives, so the signals and emails follow that webhook, once. What is returned is
    # an unsaved copy showing the state the provider confirmed.

    def _release_schedule(self, subscription: Subscription, external_id: str) -> None:
        """Release the subscription's schedule at the provider, if any: its scheduled change is gone."""
        if self.get_provider().release_subscription_schedule(external_id) or subscription.scheduled_pricing_id:
            Subscription.objects.filter(pk=subscription.pk).update(scheduled_pricing=None, scheduled_quantity=None)
            subscription.scheduled_pricing = None
            subscription.scheduled_quantity = None

    def release_subscription_schedule(self, subscription: Subscription) -> bool:
        """Release the subscription's schedule at the provider (after its scheduled change happened)."""
        external_id = self.external_id(ExternalSubscription, subscription, "subscription")
        return self.get_provider().release_subscription_schedule(external_id)

    def cancel_subscription(self, subscription: Subscription, *, immediately: bool = False) -> Subscription:
        """Cancel at the end of the period (default) or now; a scheduled plan change is dropped."""
        self.subscriptions.check_action(subscription, "cancel_now" if immediately else "cancel_at_period_end")
        external_id = self.external_id(ExternalSubscription, subscription, "subscription")
        self._release_schedule(subscription, external_id)
        self.get_provider().cancel_subscription(external_id, at_period_end=not immediately)
        answered = copy.copy(subscription)
        if immediately:
            answered.status = Subscription.Status.CANCELED
            answered.canceled_at = answered.ended_at = timezone.now()
            answered.cancel_at_period_end = False
        else:
            answered.cancel_at_period_end = True
            answered.cancel_at = subscription.current_period_end
        return answered

    def resume_subscription(self, subscription: Subscription) -> Subscription:
        """Undo a cancellation set for the end of the period or for a date."""
        self.subscriptions.check_action(subscription, "resume")
        external_id = self.external_id(ExternalSubscription, subscription, "subscription")
        self._release_schedule(subscription, external_id)
        self.get_provider().resume_subscription(external_id)
        answered = copy.copy(subscription)
        answered.cancel_at_period_end = False
        answered.cancel_at = None
        return answered

    def change_plan(
        self, subscription: Subscription, pricing: Pricing, quantity: int, *, at_period_end: bool = False
    ) -> Subscription:
        """
        Switch to ``pricing`` and ``quantity`` now, prorated by ``PRORATION_BEHAVIOR``; or, with
        ``at_period_end`` (a downgrade), at the end of the current period through a
        subscription schedule, recorded meanwhile as the subscription's scheduled change. The
        new plan passes the same checks as a purchase (quantity, subscriptions per customer,
        open checkouts); the subscription does not count against itself.
        """
        self.subscriptions.check_action(
            subscription, "change_plan_at_period_end" if at_period_end else "change_plan_now"
        )
        if not pricing.is_recurring:
            raise PurchaseNotAllowed("A subscription can only change to a recurring price.", code="not_recurring")
        self.plans.check_purchase(subscription.customer, pricing, quantity, replacing=subscription)
        external_id = self.external_id(ExternalSubscription, subscription, "subscription")
        price_id = self.ensure_provider_price(pricing)
        provider = self.get_provider()
        if at_period_end:
            provider.schedule_subscription_change(external_id, price_external_id=price_id, quantity=quantity)
            # Local-only: what the schedule will do. The provider's answer confirmed it.
            subscription.scheduled_pricing = pricing
            subscription.scheduled_quantity = quantity
            subscription.save(update_fields=["scheduled_pricing", "scheduled_quantity", "updated_at"])
            return subscription
        self._release_schedule(subscription, external_id)
        provider.change_subscription(
            external_id,
            price_external_id=price_id,
            quantity=quantity,
            proration_behavior=bob_settings.PRORATION_BEHAVIOR,
        )
        answered = copy.copy(subscription)
        if answered.pricing_id != pricing.pk:
            answered.entitlements = self.plans.entitlements_for(pricing.product, quantity)
        answered.pricing = pricing
        answered.quantity = quantity
        return answered

    def get_webhook_inbox(self, provider_name: str = "stripe") -> WebhookInbox:
        """The inbox that stores and applies ``provider_name``'s events, with this interactor's side effects."""
        return WebhookInbox(
            get_provider(provider_name), EventApplier(self.plans, self.billing), self.record_side_effects
        )

    def record_side_effects(self, signal: Signal, kwargs: dict[str, Any]) -> None:
        """
        Record, inside the transaction that applies a webhook event, the billing email that
        a signal the event will send implies; it is sent after the commit. Kinds switched off
        in ``EMAILS_ENABLED`` cost nothing.
        """
        if signal is signals.invoice_paid and self.mailer.enabled("payment_receipt"):
            self.email_payment_receipt(kwargs["invoice"])
        elif signal is signals.payment_failed and kwargs.get("invoice") and self.mailer.enabled("payment_failed"):
            # A failed checkout payment happens while the customer is on the page: no email.
            self.email_payment_failed(kwargs["invoice"])
        elif signal is signals.subscription_canceled and self.mailer.enabled("subscription_canceled"):
            self.email_subscription_canceled(kwargs["subscription"])
        elif signal is signals.subscription_trial_will_end and self.mailer.enabled("trial_ending"):
            self.email_trial_ending(kwargs["subscription"])

    def handle_webhook_from_stripe(self, payload: dict[str, Any], body: bytes | None = None) -> ReceiveResult:
        """
        Store and apply one verified Stripe event payload, exactly once; ``body`` is the
        request body it was parsed from, stored as received. Raises WebhookVerificationError
        when the payload is not a Stripe event. In a queued mode (``WEBHOOK_PROCESSING``)
        the event is stored pending and handed to a worker instead of applied here.
        """
        return self._take_event(self.get_webhook_inbox("stripe"), payload, body)

    def _take_event(self, inbox: WebhookInbox, payload: dict[str, Any], body: bytes | None) -> ReceiveResult:
        """Apply a verified event here (inline), or store it and hand it to a worker (queued)."""
        if webhook_processing() == "inline":
            return inbox.receive(payload, body)
        result = inbox.store(payload, body)
        if result.to_apply:
            if bob_settings.WEBHOOK_ENQUEUE == "background":
                self.publish_webhook_event(result.event)
            else:
                self.enqueue_webhook_event(result.event)
        return result

    def publish_webhook_event(self, event: WebhookEvent) -> None:
        """
        Hand a stored event to this process's background publisher (WEBHOOK_ENQUEUE
        "background"), which sends it to the task engine with others, after the commit of
        the transaction that stored it; the request does not wait for the broker.
        """
        from django_bob_payments import tasks

        pk = event.pk
        transaction.on_commit(lambda: tasks.publisher.submit(pk))

    def enqueue_webhook_event(self, event: WebhookEvent) -> bool:
        """
        Hand a stored event to a worker of the queued mode; False when the task engine refused
        it (its broker down, say): the event stays pending in the inbox, where the sweeper
        finds it, so the provider's delivery is still answered 2xx.
        """
        mode = webhook_processing()
        queue = bob_settings.WEBHOOK_QUEUE
        try:
            from django_bob_payments import tasks

            if mode == "celery":
                options = {"queue": queue} if queue else {}
                tasks.apply_webhook_event.apply_async(args=[event.pk], **options)
            else:
                task = tasks.apply_webhook_event_task
                (task.using(queue_name=queue) if queue else task).enqueue(event.pk)
        except BobPaymentsImproperlyConfigured:
            raise
        except Exception as err:
            logger.warning(
                "Webhook event %s is stored but could not be queued (%s); the sweeper will hand it out.",
                event.event_id,
                loggable(err),
            )
            return False
        return True

    def apply_queued_webhook_event(self, pk: int) -> WebhookEvent | None:
        """What a worker of the queued mode runs: apply the stored event ``pk`` (see ``WebhookInbox.apply_queued``)."""
        head = stored_head(pk)
        if head is None:
            return None
        return self.get_webhook_inbox(head.provider).apply_queued(pk, head)

    def apply_queued_webhook_events(self, pks: list[int]) -> list[WebhookEvent]:
        """
        What a worker runs for a batch of the background publisher: ``apply_queued_webhook_event``
        for each event, in order (see ``WebhookInbox.apply_queued_batch``).
        """
        heads = {row.pk: row for row in WebhookEvent.objects.filter(pk__in=pks).only(*HEAD_FIELDS)}
        rows: list[WebhookEvent] = []
        for provider in dict.fromkeys(head.provider for head in heads.values()):
            batch = [pk for pk in pks if pk in heads and heads[pk].provider == provider]
            rows.extend(self.get_webhook_inbox(provider).apply_queued_batch(batch, heads))
        return rows

    def backfill_webhook_events(
        self, since: datetime.datetime, *, undelivered_only: bool = True, provider_name: str = "stripe"
    ) -> BackfillReport:
        """
        Feed the events the provider holds since ``since`` that the inbox never stored
        through the inbox, oldest first, as if they had just been delivered (applied inline,
        or handed to the queued mode's workers): after an outage of the endpoint, or of the
        site. Stripe keeps 30 days of events; ``undelivered_only`` lists only those an
        endpoint has not received (``delivery_success=false``). Events stored already,
        whatever their status, are left to ``processwebhooks``.
        """
        inbox = self.get_webhook_inbox(provider_name)
        report = BackfillReport()
        missing: list[dict[str, Any]] = []
        page: list[dict[str, Any]] = []

        def keep_missing() -> None:
            stored = set(
                WebhookEvent.objects.filter(
                    provider=provider_name, event_id__in=[event.get("id") for event in page]
                ).values_list("event_id", flat=True)
            )
            missing.extend(event for event in page if event.get("id") not in stored)
            report.known += sum(1 for event in page if event.get("id") in stored)
            page.clear()

        for event in inbox.provider.iter_events(int(since.timestamp()), undelivered_only=undelivered_only):
            report.listed += 1
            page.append(event)
            if len(page) == 100:
                keep_missing()
        keep_missing()
        # The provider lists newest first; the inbox takes them in the order they happened.
        for event in reversed(missing):
            body = json.dumps(event, separators=(",", ":")).encode()
            try:
                result = self._take_event(inbox, event, body)
            except WebhookVerificationError as err:
                # Not an event the inbox can store (as a webhook with that body would be refused).
                report.refused.append(f"{str(event.get('id'))[:64]}: {err.args[0]}")
                continue
            report.fed += 1
            if result.event.status in (WebhookEvent.Status.FAILED, WebhookEvent.Status.WAITING):
                report.failed.append(result.event)
        return report

    def reconcile_billing(
        self, *, apply: bool = False, provider_name: str = "stripe", customer: Customer | None = None
    ) -> ReconcileReport:
        """
        Compare every subscription and invoice at the provider with the local one, in pages
        (one request per 100), and with ``apply`` repair each difference through the webhook
        inbox: a synthetic event of this second carrying the provider's object
        (``customer.subscription.updated``; for an invoice, the event of its status),
        applied by the same handler under the same lock. What the handlers refuse (reviving
        an ended subscription, moving an invoice back) is reported, not repaired. With
        ``customer``, only that customer's subscriptions (one request per 100 of them).
        """
        inbox = self.get_webhook_inbox(provider_name)
        provider = inbox.provider
        report = ReconcileReport()
        now = int(timezone.now().timestamp())
        if customer is not None:
            link = customer.external_ids.filter(provider=provider_name, deleted_at__isnull=True).first()
            if link is None:
                return report
            comparer = SubscriptionComparer(provider_name)
            kinds: tuple[tuple[str, Any, Any], ...] = (
                ("subscription", lambda: provider.iter_subscriptions(link.external_id), comparer),
            )
        else:
            kinds = (
                ("subscription", provider.iter_subscriptions, SubscriptionComparer(provider_name)),
                ("invoice", provider.iter_invoices, InvoiceComparer(provider_name)),
            )
        for kind, listing, comparer in kinds:
            page: list[tuple[dict[str, Any], ProviderEvent]] = []
            for remote in listing():
                report.compared[kind] += 1
                event_type = (
                    "customer.subscription.updated"
                    if kind == "subscription"
                    else INVOICE_EVENT_TYPES.get(str(remote.get("status")), "invoice.finalized")
                )
                payload = synthetic_event(provider, f"evt_reconcile_{remote.get('id')}_{now}", event_type, remote)
                event = provider.parse_event(payload)
                if event.unreadable:
                    report.drift.append(Drift(str(remote.get("id")), [f"unreadable: {event.unreadable}"]))
                    continue
                page.append((payload, event))
                if len(page) == 100:
                    self._reconcile_page(inbox, comparer, page, report, apply)
            self._reconcile_page(inbox, comparer, page, report, apply)
            if customer is None:
                report.not_at_provider.extend(comparer.missing_at_provider())
            else:
                report.not_at_provider.extend(comparer.missing_at_provider(customer.pk))
        return report

    def refresh_subscriptions(self, customer: Customer) -> bool:
        """
        Bring the customer's subscriptions up to date with the provider now (after the
        customer portal, say), at most once a minute per customer: ``reconcile_billing``
        for that customer, repairs applied. False when nothing was asked (too soon, or the
        customer is not at the provider yet).
        """
        link = customer.external_ids.filter(provider="stripe", deleted_at__isnull=True).first()
        if link is None:
            return False
        key = f"bob_payments:subscriptions-refresh:{link.provider}:{link.external_id}"
        if not cache.add(key, True, SUBSCRIPTIONS_REFRESH_SECONDS):
            return False
        self.reconcile_billing(apply=True, customer=customer)
        return True

    @staticmethod
    def _reconcile_page(
        inbox: WebhookInbox,
        comparer: Comparer,
        page: list[tuple[dict[str, Any], ProviderEvent]],
        report: ReconcileReport,
        apply: bool,
    ) -> None:
        drift = {found.external_id: found for found in comparer.compare_page([event.data for _, event in page])}
        applied = []
        for payload, event in page:
            found = drift.get(event.data["external_id"])
            if found is None:
                continue
            report.drift.append(found)
            if apply:
                result = inbox.receive(payload)
                found.note = result.event.last_error or result.event.outcome
                applied.append(event.data)
        if applied:
            # Repaired when nothing differs any more (a handler may refuse: an ended subscription).
            left = {found.external_id for found in comparer.compare_page(applied)}
            for found in report.drift[-len(applied) :]:
                found.repaired = found.external_id not in left
        page.clear()

    def sweep_webhook_events(self, older_than: datetime.timedelta | None = None) -> int:
        """
        Hand again the events still pending or failed ``older_than`` after they came (by
        default WEBHOOK_SWEEP_AFTER minutes) to the queued mode's workers, or apply them here
        inline. Returns how many were handed out (or applied).
        """
        if older_than is None:
            older_than = datetime.timedelta(minutes=bob_settings.WEBHOOK_SWEEP_AFTER)
        count = 0
        for provider in WebhookEvent.objects.values_list("provider", flat=True).distinct().order_by():
            inbox = self.get_webhook_inbox(provider)
            for pk in inbox.unapplied(older_than):
                if webhook_processing() == "inline":
                    inbox.apply_stored(pk)
                else:
                    event = WebhookEvent.objects.only("pk", "event_id").get(pk=pk)
                    if not self.enqueue_webhook_event(event):
                        break
                count += 1
        return count

    def process_webhook_event(self, event: WebhookEvent) -> WebhookEvent:
        """Apply a stored event again (a failed or pending one); the replay of processwebhooks."""
        return self.get_webhook_inbox(event.provider).apply_stored(event.pk)

    # The async API: the same use cases as coroutines, for ASGI projects. Database work runs
    # in Django's thread-sensitive executor (as the ORM's own async API does); the VIES check
    # touches no database and runs in a thread of its own, so a slow VIES holds no coroutine
    # and no other request; Stripe calls run with the database work, off the event loop.

    async def avalidate_vies(self, vat_number: str, country: str, *, use_cache: bool = True) -> VatCheck:
        """``validate_vies`` as a coroutine."""
        return await sync_to_async(self.validate_vies, thread_sensitive=False)(vat_number, country, use_cache=use_cache)

    async def acreate_user_billing_info(
        self, customer: Customer, data: dict[str, Any], verdict: VatCheck | None = None
    ) -> BillingInformation:
        """``create_user_billing_info`` as a coroutine; VIES is asked without holding the database thread."""
        if verdict is None:
            billing, needs_check = await sync_to_async(self.billing.prepare)(customer, data)
            if needs_check:
                verdict = await self.avalidate_vies(
                    billing.vat_number, str(billing.country), use_cache=self.billing.reuses_cached_verdicts
                )
        return await sync_to_async(self.create_user_billing_info)(customer, data, verdict)

    async def aget_customer_management_portal_link(self, customer: Customer, return_url: str) -> str:
        """``get_customer_management_portal_link`` as a coroutine."""
        return await sync_to_async(self.get_customer_management_portal_link)(customer, return_url)

    async def astart_checkout(
        self, customer: Customer, pricing: Pricing, quantity: int, success_url: str, cancel_url: str
    ) -> tuple[PaymentAttempt, str]:
        """``start_checkout`` as a coroutine."""
        return await sync_to_async(self.start_checkout)(customer, pricing, quantity, success_url, cancel_url)

    async def acancel_subscription(self, subscription: Subscription, *, immediately: bool = False) -> Subscription:
        """``cancel_subscription`` as a coroutine."""
        return await sync_to_async(self.cancel_subscription)(subscription, immediately=immediately)

    async def aresume_subscription(self, subscription: Subscription) -> Subscription:
        """``resume_subscription`` as a coroutine."""
        return await sync_to_async(self.resume_subscription)(subscription)

    async def achange_plan(
        self, subscription: Subscription, pricing: Pricing, quantity: int, *, at_period_end: bool = False
    ) -> Subscription:
        """``change_plan`` as a coroutine."""
        return await sync_to_async(self.change_plan)(subscription, pricing, quantity, at_period_end=at_period_end)

    async def ahandle_webhook_from_stripe(self, payload: dict[str, Any], body: bytes | None = None) -> ReceiveResult:
        """``handle_webhook_from_stripe`` as a coroutine: exactly once, in order per customer, as the sync one."""
        return await sync_to_async(self.handle_webhook_from_stripe)(payload, body)

    # Emails

    def _customer_for_email(self, customer_id: int) -> Customer:
        return Customer.objects.select_related("billing_information", "user").get(pk=customer_id)

    def email_payment_receipt(self, invoice: Invoice) -> BillingEmail | None:
        """The receipt of a paid invoice, with the reverse-charge wording when it applies."""
        customer = self._customer_for_email(invoice.customer_id)
        # The invoice's own tax status and tax, not today's billing row: the receipt states the
        # tax of the invoice it receipts.
        reverse_charge = invoice.customer_tax_exempt == BillingInformation.TaxExempt.REVERSE and not invoice.tax
        return self.mailer.send(
            "payment_receipt",
            f"{invoice.provider}:{invoice.external_id}",
            customer,
            {"invoice": invoice, "reverse_charge": reverse_charge},
        )

    def email_payment_failed(self, invoice: Invoice) -> BillingEmail | None:
        """A failed invoice payment, linking to the page where the customer can pay it."""
        return self.mailer.send(
            "payment_failed",
            f"{invoice.provider}:{invoice.external_id}",
            self._customer_for_email(invoice.customer_id),
            {"invoice": invoice},
        )

    def email_subscription_canceled(self, subscription: Subscription) -> BillingEmail | None:
        """The end of a subscription."""
        return self.mailer.send(
            "subscription_canceled",
            str(subscription.pk),
            self._customer_for_email(subscription.customer_id),
            {"subscription": subscription},
        )

    def email_trial_ending(self, subscription: Subscription) -> BillingEmail | None:
        """A trial ending in three days."""
        trial_end = int(subscription.trial_end.timestamp()) if subscription.trial_end else 0
        return self.mailer.send(
            "trial_ending",
            f"{subscription.pk}:{trial_end}",
            self._customer_for_email(subscription.customer_id),
            {"subscription": subscription},
        )

    def email_vat_invalid(self, billing: BillingInformation) -> BillingEmail | None:
        """A VAT number VIES no longer confirms."""
        checked = billing.vat_verified_at.date().isoformat() if billing.vat_verified_at else ""
        return self.mailer.send(
            "vat_invalid",
            f"{billing.pk}:{billing.vat_number}:{checked}",
            self._customer_for_email(billing.customer_id),
            {"billing": billing},
        )


def get_payment_interactor() -> PaymentInteractor:
    """A new instance of the class named by ``BOB_PAYMENTS["PAYMENT_INTERACTOR_CLASS"]``."""
    interactor_class = bob_settings.PAYMENT_INTERACTOR_CLASS
    if not (isinstance(interactor_class, type) and issubclass(interactor_class, PaymentInteractor)):
        raise BobPaymentsImproperlyConfigured(
            'BOB_PAYMENTS["PAYMENT_INTERACTOR_CLASS"] must name a subclass of '
            f"django_bob_payments.interactors.PaymentInteractor, not {interactor_class!r}."
        )
    return interactor_class()
