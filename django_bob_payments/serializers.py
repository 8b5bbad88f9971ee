"""Serializers of the REST API."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from django_bob_payments.models import (
    BillingInformation,
    Invoice,
    Order,
    PaymentAttempt,
    Pricing,
    Product,
    Subscription,
)
from django_bob_payments.reports import hide_locals
from django_bob_payments.services.billing import EDITABLE_FIELDS

# What the app decides or records; callers read these, never write them.
READ_ONLY_FIELDS = [
    "is_from_eu",
    "vat_status",
    "vat_verified_at",
    "vies_consultation_number",
    "provider_vat_status",
    "tax_exempt",
    "sync_status",
    "synced_at",
]


def vat_error(verdict: Any) -> serializers.ValidationError:
    return serializers.ValidationError({"vat_number": [serializers.ErrorDetail(verdict.message, code=verdict.code)]})


# The largest quantity the database stores (a positive 32-bit integer); a product's own
# max_quantity may allow less.
MAX_QUANTITY = 2**31 - 1

# The browsable API's country select, with a placeholder instead of a preselected country.
COUNTRY_SELECT = "django_bob_payments/rest_framework/country_select.html"


class StrictCountryField(CountryField):
    """
    A country as its ISO 3166-1 alpha-2 code, and nothing else: not a name, not a
    lower-case or padded code, not an empty or wrongly typed value (which would otherwise
    read as "outside the EU"). Shows a select with no country preselected.
    """

    default_error_messages = {"invalid_choice": _("Give a country's two-letter ISO code, such as DE.")}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("style", {"template": COUNTRY_SELECT})
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or len(data) != 2 or not data.isascii() or data not in countries:
            self.fail("invalid_choice")
        return data


class KnownFieldsMixin:
    """
    Refuse with a 400 a body naming a field the serializer does not take: an unknown one
    (a typo, or an attempt at mass assignment), or a read-only one (the tax status, say)
    with another value than the one held. DRF would ignore them silently. A body read from
    GET and sent back whole still passes: its read-only values are those held.
    """

    # Keys the browsable API's HTML forms add.
    FORM_KEYS = frozenset(("csrfmiddlewaretoken", "_content", "_content_type", "_method"))

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            instance = getattr(self, "instance", None)
            held: dict[str, Any] | None = None
            errors = {}
            for key in data.keys():
                if key in writable or key in self.FORM_KEYS:
                    continue
                if key in self.fields:
                    if held is None:
                        held = self.to_representation(instance) if instance is not None else {}
                    if key in held and held[key] == data[key]:
                        continue
                    errors[key] = [serializers.ErrorDetail("This field is read-only.", code="read_only")]
                else:
                    errors[str(key)[:64]] = [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text given as a JSON string: a number or a boolean is refused, not turned into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(StrictCharField, serializers.EmailField):
    """An email address given as a JSON string."""


@hide_locals
class BillingInformationSerializer(KnownFieldsMixin, serializers.ModelSerializer):
    """The caller's billing information; the VAT verdict and tax status are read-only."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.EmailField: StrictEmailField,
    }
    country = StrictCountryField()

    class Meta:
        model = BillingInformation
        fields = [*EDITABLE_FIELDS, *READ_ONLY_FIELDS]
        read_only_fields = READ_ONLY_FIELDS
        # What the schema says is what is refused: an empty name or email is a 400.
        extra_kwargs = {"name": {"min_length": 1}, "email": {"min_length": 3}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the VAT number when the billing service says so: format, checksum, then VIES."""
        instance = self.instance
        number = attrs.get("vat_number", instance.vat_number if instance else "")
        country = str(attrs.get("country", instance.country if instance else ""))
        interactor = self.context["interactor"]
        if number and interactor.billing.needs_check(instance, number, country):
            verdict = interactor.validate_vies(number, country, use_cache=interactor.billing.reuses_cached_verdicts)
            if verdict.status == BillingInformation.VatStatus.INVALID:
                raise vat_error(verdict)
            self.context["verdict"] = verdict
        return attrs


class BillingInformationResponseSerializer(BillingInformationSerializer):
    """
    Billing information as served. ``country`` is "" on a row saved without one (through the
    Python API, or before countries were checked); requests must name a country.
    """

    country = serializers.ChoiceField(choices=[("", ""), *countries], read_only=True)


@hide_locals
class VatValidationSerializer(KnownFieldsMixin, serializers.Serializer):
    """A VAT number to check, and the country it should belong to."""

    vat_number = serializers.CharField(max_length=32)
    country = StrictCountryField()


class VatVerdictSerializer(serializers.Serializer):
    """What the check found."""

    status = serializers.ChoiceField(choices=["valid", "invalid", "unverified", "not_applicable"])
    vat_number = serializers.CharField(source="number")
    country = serializers.CharField()
    code = serializers.CharField(help_text=_("Why it is not valid, or which VIES error made it unknown."))
    message = serializers.CharField()
    name = serializers.CharField()
    address = serializers.CharField()
    consultation_number = serializers.CharField()


class PricingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pricing
        fields = ["id", "nickname", "amount", "currency", "type", "interval", "interval_count", "trial_period_days"]


class ProductSerializer(serializers.ModelSerializer):
    """A product of the public catalog with its active pricings."""

    pricings = PricingSerializer(many=True, source="active_pricings")

    class Meta:
        model = Product
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "limits",
            "features",
            "max_subscriptions_per_customer",
            "min_quantity",
            "max_quantity",
            "pricings",
        ]


_RETURN_URL_HELP = "An https URL on one of RETURN_URL_HOSTS (BOB_PAYMENTS); any other host is a 400."


class CheckoutSerializer(KnownFieldsMixin, serializers.Serializer):
    """What to buy, and optionally where to come back (a URL on one of ALLOWED_HOSTS)."""

    pricing = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)
    success_url = serializers.URLField(required=False, max_length=2000, help_text=_RETURN_URL_HELP)
    cancel_url = serializers.URLField(required=False, max_length=2000, help_text=_RETURN_URL_HELP)


class ReturnUrlSerializer(KnownFieldsMixin, serializers.Serializer):
    return_url = serializers.URLField(required=False, max_length=2000, help_text=_RETURN_URL_HELP)


class SubscriptionSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(source="pricing.product", slug_field="slug", read_only=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "product",
            "pricing",
            "status",
            "quantity",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "cancel_at",
            "canceled_at",
            "trial_end",
            "entitlements",
            "exceeds_limit",
            "scheduled_pricing",
            "scheduled_quantity",
        ]
        read_only_fields = fields


class ResumeSerializer(serializers.Serializer):
    """Resuming takes no parameters."""


class CancelSerializer(KnownFieldsMixin, serializers.Serializer):
    immediately = serializers.BooleanField(default=False)


class ChangePlanSerializer(KnownFieldsMixin, serializers.Serializer):
    pricing = serializers.IntegerField(min_value=1, required=False)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, required=False)
    at_period_end = serializers.BooleanField(
        default=False, help_text="Switch at the end of the current period (a downgrade) instead of now."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "pricing" not in attrs and "quantity" not in attrs:
            raise serializers.ValidationError("Give a pricing, a quantity, or both.", code="nothing_to_change")
        return attrs


class PaymentAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentAttempt
        fields = ["id", "status", "amount", "currency", "failure_code", "failure_message", "created_at"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    payment_attempts = PaymentAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "pricing",
            "quantity",
            "status",
            "amount_total",
            "currency",
            "subscription",
            "paid_at",
            "created_at",
            "payment_attempts",
        ]
        read_only_fields = fields


class CheckoutStateSerializer(serializers.Serializer):
    """The outcome of one checkout: ``GET checkout/<session_id>/``."""

    session_id = serializers.CharField(read_only=True)
    state = serializers.ChoiceField(choices=["processing", "complete", "expired", "failed", "canceled"], read_only=True)
    order = OrderSerializer(read_only=True)
    subscription = SubscriptionSerializer(read_only=True, allow_null=True)


class InvoiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "status",
            "currency",
            "subtotal",
            "tax",
            "total",
            "amount_paid",
            "amount_due",
            "hosted_invoice_url",
            "invoice_pdf",
            "period_start",
            "period_end",
            "paid_at",
            "subscription",
            "created_at",
        ]
        read_only_fields = fields
