"""
The data model, one module per domain.

Local rows (Product, Pricing, Customer, BillingInformation, Subscription, Order,
PaymentAttempt, Invoice) are the single source of truth. External* rows hold only the ID a
provider gave the local row, so another provider can sit beside Stripe. Money is stored as
integer minor units (cents) next to a lower-case ISO 4217 currency, as Stripe does.

Every model is importable from here: ``from django_bob_payments.models import Customer``.
"""

from django_bob_payments.models.base import EU_COUNTRIES, Provider, TimestampedModel, currency_validator
from django_bob_payments.models.catalog import Pricing, Product
from django_bob_payments.models.customers import BillingInformation, Customer
from django_bob_payments.models.fake import FakeProviderObject
from django_bob_payments.models.links import (
    ExternalCustomer,
    ExternalPaymentProvider,
    ExternalPricing,
    ExternalProduct,
    ExternalSubscription,
)
from django_bob_payments.models.orders import Invoice, Order, PaymentAttempt
from django_bob_payments.models.site import PaymentsSite
from django_bob_payments.models.subscriptions import Subscription, SubscriptionItem
from django_bob_payments.models.webhooks import BillingEmail, WebhookEvent

__all__ = [
    "EU_COUNTRIES",
    "BillingEmail",
    "BillingInformation",
    "Customer",
    "ExternalCustomer",
    "ExternalPaymentProvider",
    "ExternalPricing",
    "ExternalProduct",
    "ExternalSubscription",
    "FakeProviderObject",
    "Invoice",
    "Order",
    "PaymentAttempt",
    "PaymentsSite",
    "Pricing",
    "Product",
    "Provider",
    "Subscription",
    "SubscriptionItem",
    "TimestampedModel",
    "WebhookEvent",
    "currency_validator",
]
