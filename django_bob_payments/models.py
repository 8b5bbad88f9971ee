"""
The data model.

Local rows (Product, Pricing, Customer, BillingInformation, Subscription, Order,
PaymentAttempt, Invoice) are the single source of truth. External* rows hold only the ID a
provider gave the local row, so another provider can sit beside Stripe. Money is stored as
integer minor units (cents) next to a lower-case ISO 4217 currency, as Stripe does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

currency_validator = RegexValidator(
    r"^[a-z]{3}$", _("Enter a lower-case ISO 4217 currency code, such as eur."), code="currency"
)

# Member states of the EU, as ISO 3166-1 alpha-2 codes (Greece is GR here, EL at VIES).
EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())


class Provider(models.TextChoices):
    """Payment providers the app can talk to."""

    STRIPE = "stripe", "Stripe"
    FAKE = "fake", _("Fake (in-database)")


class TimestampedModel(models.Model):
    """Creation and last-change times."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class ExternalPaymentProvider(TimestampedModel):
    """
    The identity of an object at a payment provider.

    ``last_event_created`` and ``last_event_id`` are the watermark of the newest provider
    event applied to the object, so an older event delivered late never overwrites newer
    state.
    """

    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    external_id = models.CharField(_("external ID"), max_length=255)
    last_event_created = models.BigIntegerField(_("last applied event time"), null=True, blank=True, editable=False)
    last_event_id = models.CharField(_("last applied event"), max_length=255, blank=True, default="", editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                name="%(app_label)s_%(class)s_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.external_id}"


class Product(TimestampedModel):
    """
    Something a customer can buy: a plan or a one-off item, with the limits and features
    its subscriptions grant.
    """

    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    limits = models.JSONField(
        _("limits"),
        default=dict,
        blank=True,
        help_text=_('Numeric plan limits by name, for example {"projects": 10, "seats": 5}.'),
    )
    features = models.JSONField(
        _("features"),
        default=list,
        blank=True,
        help_text=_('Names of the features the plan grants, for example ["api", "sso"].'),
    )
    max_subscriptions_per_customer = models.PositiveIntegerField(
        _("active subscriptions allowed per customer"),
        null=True,
        blank=True,
        default=1,
        help_text=_("Empty means no limit."),
    )
    min_quantity = models.PositiveIntegerField(_("minimum quantity"), default=1)
    max_quantity = models.PositiveIntegerField(
        _("maximum quantity"), null=True, blank=True, help_text=_("Empty means no limit.")
    )
    sort_order = models.IntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sort_order", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_quantity__isnull=True) | Q(max_quantity__gte=models.F("min_quantity")),
                name="bob_payments_product_quantity_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Pricing(TimestampedModel):
    """A price of a product: an amount in minor units, once or every interval."""

    class Type(models.TextChoices):
        ONE_TIME = "one_time", _("One-off")
        RECURRING = "recurring", _("Recurring")

    class Interval(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")
        YEAR = "year", _("Year")

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="pricings", verbose_name=_("product"))
    nickname = models.CharField(_("nickname"), max_length=255, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(
        _("currency"), max_length=3, validators=[currency_validator], help_text=_("ISO 4217, lower case.")
    )
    type = models.CharField(_("type"), max_length=16, choices=Type.choices, default=Type.RECURRING)
    interval = models.CharField(_("interval"), max_length=8, choices=Interval.choices, blank=True, default="")
    interval_count = models.PositiveSmallIntegerField(_("interval count"), default=1)
    trial_period_days = models.PositiveSmallIntegerField(_("trial days"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("pricing")
        verbose_name_plural = _("pricings")
        ordering = ["product", "amount", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(type="recurring") & ~Q(interval="")) | (Q(type="one_time") & Q(interval="")),
                name="bob_payments_pricing_interval_matches_type",
            ),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="bob_payments_pricing_interval_count"),
        ]

    def __str__(self) -> str:
        label = f"{self.product.name}: {self.amount} {self.currency.upper()}"
        if self.type == self.Type.RECURRING:
            per = self.interval if self.interval_count == 1 else f"{self.interval_count} {self.interval}s"
            label += f" / {per}"
        return label

    @property
    def is_recurring(self) -> bool:
        return self.type == self.Type.RECURRING


class Customer(TimestampedModel):
    """
    Whoever pays: a user, or an organization when the project bills teams.

    An organization is any model of the project, named by ``BOB_PAYMENTS["ORGANIZATION_MODEL"]``
    and held through a generic relation, so the app's migrations never depend on it. When
    the owning user is deleted the customer stays, ownerless, with its billing history.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payment_customers",
        verbose_name=_("user"),
    )
    organization_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("organization type"),
    )
    organization_id = models.CharField(_("organization ID"), max_length=64, blank=True, default="")
    organization = GenericForeignKey("organization_type", "organization_id")
    preferred_locale = models.CharField(_("preferred locale"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            # NULLs are distinct in unique constraints on every supported database, so
            # ownerless customers and organization customers (user NULL) do not collide,
            # and no partial index is needed (MariaDB has none).
            models.UniqueConstraint(fields=["user"], name="bob_payments_customer_one_per_user"),
            models.UniqueConstraint(
                fields=["organization_type", "organization_id"],
                name="bob_payments_customer_one_per_organization",
            ),
            models.CheckConstraint(
                condition=(Q(organization_type__isnull=True) & Q(organization_id=""))
                | (Q(organization_type__isnull=False) & ~Q(organization_id="")),
                name="bob_payments_customer_organization_complete",
            ),
        ]

    def __str__(self) -> str:
        if self.organization_type_id:
            return f"{self.organization_type.model} {self.organization_id}"
        if self.user_id:
            return str(self.user)
        return f"customer {self.pk}"

    @property
    def is_organization(self) -> bool:
        return self.organization_type_id is not None

    @property
    def entitlements(self) -> list[dict[str, Any]]:
        """The entitlements of the subscriptions that grant their plan now (one query, then cached)."""
        cached = self.__dict__.get("_entitlements")
        if cached is None:
            cached = list(
                self.subscriptions.filter(status__in=Subscription.ENTITLED_STATUSES).values_list(
                    "entitlements", flat=True
                )
            )
            self.__dict__["_entitlements"] = cached
        return cached

    def has_active_subscription(self) -> bool:
        """Whether a subscription grants its plan now (trialing, active or past due)."""
        return bool(self.entitlements)

    def has_feature(self, name: str) -> bool:
        """Whether a current subscription's plan grants the feature ``name``. No API call."""
        return any(name in (granted or {}).get("features", []) for granted in self.entitlements)

    def limit(self, name: str) -> int | None:
        """The highest limit ``name`` that current subscriptions grant, or None when none grants it."""
        values = [
            (granted or {}).get("limits", {}).get(name)
            for granted in self.entitlements
            if isinstance((granted or {}).get("limits", {}).get(name), (int, float))
        ]
        return max(values) if values else None


class BillingInformation(TimestampedModel):
    """The customer's invoicing details and the tax verdict drawn from them."""

    class VatStatus(models.TextChoices):
        VALID = "valid", _("Valid")
        INVALID = "invalid", _("Invalid")
        UNVERIFIED = "unverified", _("Not verified yet")
        NOT_APPLICABLE = "not_applicable", _("Not applicable")

    class TaxExempt(models.TextChoices):
        NONE = "none", _("Taxable")
        EXEMPT = "exempt", _("Exempt")
        REVERSE = "reverse", _("Reverse charge")

    class SyncStatus(models.TextChoices):
        PENDING = "pending", _("Pending")
        SYNCED = "synced", _("Synced")
        FAILED = "failed", _("Failed")

    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        related_name="billing_information",
        verbose_name=_("customer"),
    )
    name = models.CharField(_("name"), max_length=255)
    email = models.EmailField(_("email"))
    address_line1 = models.CharField(_("address line 1"), max_length=255, blank=True)
    address_line2 = models.CharField(_("address line 2"), max_length=255, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=32, blank=True)
    city = models.CharField(_("city"), max_length=128, blank=True)
    state = models.CharField(_("state"), max_length=128, blank=True)
    country = CountryField(_("country"))
    is_from_eu = models.BooleanField(_("in the EU"), default=False, editable=False)
    vat_number = models.CharField(_("VAT number"), max_length=32, blank=True)
    vat_status = models.CharField(
        _("VAT number status"),
        max_length=16,
        choices=VatStatus.choices,
        default=VatStatus.NOT_APPLICABLE,
    )
    vat_verified_at = models.DateTimeField(_("VAT number verified at"), null=True, blank=True)
    vies_consultation_number = models.CharField(_("VIES consultation number"), max_length=64, blank=True)
    provider_vat_status = models.CharField(
        _("provider's VAT number check"),
        max_length=16,
        blank=True,
        help_text=_("The provider's own verification of the VAT number: pending, verified, unverified, unavailable."),
    )
    tax_exempt = models.CharField(_("tax status"), max_length=8, choices=TaxExempt.choices, default=TaxExempt.NONE)
    sync_status = models.CharField(
        _("provider sync"), max_length=8, choices=SyncStatus.choices, default=SyncStatus.PENDING
    )
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)

    class Meta:
        verbose_name = _("billing information")
        verbose_name_plural = _("billing information")

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.is_from_eu = str(self.country) in EU_COUNTRIES
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "country" in update_fields:
            kwargs["update_fields"] = {*update_fields, "is_from_eu"}
        super().save(*args, **kwargs)


class Subscription(TimestampedModel):
    """A customer's recurring purchase of a pricing, mirrored from the provider's state."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", _("Incomplete")
        INCOMPLETE_EXPIRED = "incomplete_expired", _("Incomplete, expired")
        TRIALING = "trialing", _("Trialing")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        CANCELED = "canceled", _("Canceled")
        UNPAID = "unpaid", _("Unpaid")
        PAUSED = "paused", _("Paused")

    # Statuses in which the customer keeps the plan's entitlements.
    ENTITLED_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("customer")
    )
    pricing = models.ForeignKey(
        Pricing, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("pricing")
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.INCOMPLETE)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    entitlements = models.JSONField(
        _("entitlements"),
        default=dict,
        blank=True,
        help_text=_("The product's limits and features, as granted to this subscription."),
    )
    current_period_start = models.DateTimeField(_("current period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(_("current period end"), null=True, blank=True)
    cancel_at_period_end = models.BooleanField(_("cancels at period end"), default=False)
    cancel_at = models.DateTimeField(_("cancels at"), null=True, blank=True)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    trial_start = models.DateTimeField(_("trial start"), null=True, blank=True)
    trial_end = models.DateTimeField(_("trial end"), null=True, blank=True)
    scheduled_pricing = models.ForeignKey(
        Pricing,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("scheduled pricing"),
        help_text=_("The plan a pending downgrade switches to at the end of the period."),
    )
    scheduled_quantity = models.PositiveIntegerField(_("scheduled quantity"), null=True, blank=True)
    exceeds_limit = models.BooleanField(
        _("exceeds the product's limit"),
        default=False,
        help_text=_("Set when the customer has more active subscriptions to the product than it allows."),
    )

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "status"], name="bob_pay_sub_customer_status")]

    def __str__(self) -> str:
        return f"{self.customer} - {self.pricing.product.name} ({self.status})"

    @property
    def is_entitled(self) -> bool:
        return self.status in self.ENTITLED_STATUSES


class Order(TimestampedModel):
    """A customer's intent to buy a pricing, paid through one or more payment attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")
        EXPIRED = "expired", _("Expired")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer"))
    pricing = models.ForeignKey(Pricing, on_delete=models.PROTECT, related_name="orders", verbose_name=_("pricing"))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    amount_total = models.PositiveBigIntegerField(_("total (minor units)"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("subscription"),
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class PaymentAttempt(TimestampedModel):
    """One try at paying an order, such as a checkout session at the provider."""

    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        PENDING = "pending", _("Awaiting payment")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payment_attempts", verbose_name=_("order"))
    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    external_id = models.CharField(
        _("external ID"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("Empty until the provider has created its side, such as a checkout session."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    amount = models.PositiveBigIntegerField(_("amount (minor units)"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_message = models.TextField(_("failure message"), blank=True)

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                name="bob_payments_paymentattempt_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"payment attempt {self.pk} ({self.status})"


class Invoice(ExternalPaymentProvider):
    """An invoice issued by the provider, recorded from its webhooks."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")
        UNCOLLECTIBLE = "uncollectible", _("Uncollectible")
        VOID = "void", _("Void")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("subscription"),
    )
    provider_subscription_id = models.CharField(
        _("provider's subscription ID"),
        max_length=255,
        blank=True,
        help_text=_("Kept so the invoice finds its subscription when the two arrive out of order."),
    )
    number = models.CharField(_("number"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    subtotal = models.BigIntegerField(_("subtotal (minor units)"), default=0)
    tax = models.BigIntegerField(_("tax (minor units)"), default=0)
    total = models.BigIntegerField(_("total (minor units)"), default=0)
    amount_paid = models.BigIntegerField(_("amount paid (minor units)"), default=0)
    amount_due = models.BigIntegerField(_("amount due (minor units)"), default=0)
    hosted_invoice_url = models.URLField(_("hosted invoice URL"), max_length=2048, blank=True)
    invoice_pdf = models.URLField(_("PDF URL"), max_length=2048, blank=True)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-pk"]


class ExternalCustomer(ExternalPaymentProvider):
    """The provider's ID of a customer."""

    # The field that points at the local row.
    owner_field = "customer"

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("customer")
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external customer")
        verbose_name_plural = _("external customers")
        constraints = [
            *ExternalPaymentProvider.Meta.constraints,
            models.UniqueConstraint(
                fields=["customer", "provider"], name="bob_payments_externalcustomer_one_per_provider"
            ),
        ]


class ExternalProduct(ExternalPaymentProvider):
    """The provider's ID of a product."""

    # The field that points at the local row.
    owner_field = "product"

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("product")
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external product")
        verbose_name_plural = _("external products")
        constraints = [
            *ExternalPaymentProvider.Meta.constraints,
            models.UniqueConstraint(
                fields=["product", "provider"], name="bob_payments_externalproduct_one_per_provider"
            ),
        ]


class ExternalPricing(ExternalPaymentProvider):
    """The provider's ID of a pricing (a Stripe price)."""

    # The field that points at the local row.
    owner_field = "pricing"

    pricing = models.ForeignKey(
        Pricing, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("pricing")
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external pricing")
        verbose_name_plural = _("external pricings")
        constraints = [
            *ExternalPaymentProvider.Meta.constraints,
            models.UniqueConstraint(
                fields=["pricing", "provider"], name="bob_payments_externalpricing_one_per_provider"
            ),
        ]


class ExternalSubscription(ExternalPaymentProvider):
    """The provider's ID of a subscription."""

    # The field that points at the local row.
    owner_field = "subscription"

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="external_ids",
        verbose_name=_("subscription"),
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external subscription")
        verbose_name_plural = _("external subscriptions")
        constraints = [
            *ExternalPaymentProvider.Meta.constraints,
            models.UniqueConstraint(
                fields=["subscription", "provider"],
                name="bob_payments_externalsubscription_one_per_provider",
            ),
        ]


class WebhookEvent(models.Model):
    """
    The durable inbox of provider events: stored when verified, then applied once.

    ``customer_key`` is the provider's customer ID the event concerns (empty when none);
    events that share it are applied one at a time.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored (no handler)")
        REJECTED = "rejected", _("Rejected (wrong mode or API version)")

    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    event_id = models.CharField(_("event ID"), max_length=255)
    type = models.CharField(_("type"), max_length=128)
    api_version = models.CharField(_("API version"), max_length=64, blank=True)
    livemode = models.BooleanField(_("live mode"), default=False)
    created = models.BigIntegerField(_("created at the provider (Unix time)"))
    customer_key = models.CharField(_("customer"), max_length=255, blank=True, db_index=True)
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    outcome = models.TextField(_("outcome"), blank=True, help_text=_("What applying the event did."))
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="bob_payments_webhookevent_unique_event"),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="bob_pay_event_status")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class BillingEmail(models.Model):
    """
    One email the app sends, recorded before it is sent, so that it is sent once: ``key``
    names the message kind and the object it is about (``payment_receipt:in_123``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    key = models.CharField(_("key"), max_length=255, unique=True)
    kind = models.CharField(_("kind"), max_length=64)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails", verbose_name=_("customer")
    )
    from_email = models.CharField(_("from"), max_length=255)
    recipients = models.JSONField(_("recipients"), default=list)
    subject = models.CharField(_("subject"), max_length=255)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("billing email")
        verbose_name_plural = _("billing emails")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="bob_pay_email_status")]

    def __str__(self) -> str:
        return f"{self.kind} to {', '.join(self.recipients)} ({self.status})"


class FakeProviderObject(models.Model):
    """An object "at" the fake provider, which keeps its state in the database."""

    kind = models.CharField(_("kind"), max_length=32)
    external_id = models.CharField(_("external ID"), max_length=255, unique=True)
    data = models.JSONField(_("data"), default=dict)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("fake provider object")
        verbose_name_plural = _("fake provider objects")
        ordering = ["pk"]
        indexes = [models.Index(fields=["kind"], name="bob_pay_fake_kind")]

    def __str__(self) -> str:
        return self.external_id
