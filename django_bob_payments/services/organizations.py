"""
Organizations (teams) that own customers, for projects that bill teams.

Owns finding the project's organization model and deciding who may manage an
organization's billing.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import BobPaymentsImproperlyConfigured


class OrganizationService:
    """
    Finds the project's organization model and decides who manages its billing.

    The model is named by ``BOB_PAYMENTS["ORGANIZATION_MODEL"]``. Who may manage an
    organization's billing is asked of the organization itself: a model that defines
    ``can_manage_billing(user) -> bool`` answers it; a model without it lets nobody, so
    nothing is exposed by accident.
    """

    def get_model(self) -> type[models.Model] | None:
        """The organization model, or None when the project bills users only."""
        label = bob_settings.ORGANIZATION_MODEL
        if not label:
            return None
        try:
            return apps.get_model(label, require_ready=False)
        except (LookupError, ValueError) as err:
            raise BobPaymentsImproperlyConfigured(
                f'BOB_PAYMENTS["ORGANIZATION_MODEL"] = {label!r} is not an installed model '
                f"('app_label.ModelName'): {err}"
            ) from err

    def get(self, organization_id: Any) -> models.Model | None:
        """The organization with this primary key, or None when there is none (or no model)."""
        model = self.get_model()
        if model is None:
            return None
        try:
            return model._default_manager.get(pk=organization_id)
        except (model.DoesNotExist, ValueError, TypeError):
            return None

    def can_manage_billing(self, user: Any, organization: models.Model) -> bool:
        """Whether ``user`` may see and change ``organization``'s billing."""
        if not getattr(user, "is_authenticated", False):
            return False
        check = getattr(organization, "can_manage_billing", None)
        return bool(check(user)) if callable(check) else False
