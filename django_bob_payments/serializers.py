"""Serializers of the REST API."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from django_bob_payments.models import BillingInformation
from django_bob_payments.services.billing import EDITABLE_FIELDS
from django_bob_payments.services.vies import VatStatus

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


class BillingInformationSerializer(serializers.ModelSerializer):
    """The caller's billing information; the VAT verdict and tax status are read-only."""

    country = CountryField()

    class Meta:
        model = BillingInformation
        fields = [*EDITABLE_FIELDS, *READ_ONLY_FIELDS]
        read_only_fields = READ_ONLY_FIELDS

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Check the VAT number when it or the country changes: format, checksum, then VIES."""
        instance = self.instance
        number = attrs.get("vat_number", instance.vat_number if instance else "")
        country = str(attrs.get("country", instance.country if instance else ""))
        unchanged = instance is not None and (number, country) == (instance.vat_number, str(instance.country))
        if number and not unchanged:
            verdict = self.context["interactor"].validate_vies(number, country)
            if verdict.status == VatStatus.INVALID:
                raise vat_error(verdict)
            self.context["verdict"] = verdict
        return attrs


class VatValidationSerializer(serializers.Serializer):
    """A VAT number to check, and the country it should belong to."""

    vat_number = serializers.CharField(max_length=32)
    country = CountryField()


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
