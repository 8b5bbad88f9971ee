"""
Stripe objects as plain dicts, shaped like the API version of the pinned stripe SDK
(2026-10-28.endive for stripe 16.x): the fields each builder returns are those of the SDK's
type definitions, less the fields Stripe only includes on request (``tax_ids`` of a
customer, for one). Keyword arguments override any field.

These are what the webhook events of ``webhooks.build_event`` carry and what the test Stripe
emulator answers, so both stay in one shape.
"""

from __future__ import annotations

import secrets
import time
from typing import Any


def new_id(prefix: str) -> str:
    """An ID in Stripe's style, such as ``cus_1f9a...``."""
    return f"{prefix}_{secrets.token_hex(7)}"


def _now() -> int:
    return int(time.time())


def customer(**fields: Any) -> dict[str, Any]:
    obj = {
        "id": new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": _now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "individual_name": None,
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    obj.update(fields)
    return obj


def tax_id(customer_id: str, value: str, *, type: str = "eu_vat", status: str = "pending", **fields: Any) -> dict:
    country = value[:2]
    obj = {
        "id": new_id("txi"),
        "object": "tax_id",
        "country": "GR" if country == "EL" else country,
        "created": _now(),
        "customer": customer_id,
        "customer_account": None,
        "livemode": False,
        "owner": {"account": None, "application": None, "customer": customer_id, "type": "customer"},
        "type": type,
        "value": value,
        "verification": {"status": status, "verified_address": None, "verified_name": None},
    }
    obj.update(fields)
    return obj


def product(**fields: Any) -> dict[str, Any]:
    now = _now()
    obj = {
        "id": new_id("prod"),
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": "Product",
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "tax_details": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    obj.update(fields)
    return obj


def price(
    product_id: str,
    unit_amount: int,
    currency: str = "eur",
    *,
    interval: str | None = "month",
    interval_count: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    recurring = (
        {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
        if interval
        else None
    )
    obj = {
        "id": new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": _now(),
        "currency": currency,
        "currency_options": None,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    obj.update(fields)
    return obj


def subscription_item(
    price_obj: dict[str, Any],
    subscription_id: str,
    *,
    quantity: int = 1,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    start = _now() if current_period_start is None else current_period_start
    obj = {
        "id": new_id("si"),
        "object": "subscription_item",
        "billed_until": None,
        "billing_thresholds": None,
        "created": start,
        # Since basil (2025-03-31) the billing period lives on each item.
        "current_period_end": start + 30 * 86400 if current_period_end is None else current_period_end,
        "current_period_start": start,
        "current_trial": None,
        "discounts": [],
        "metadata": {},
        "plan": None,
        "price": price_obj,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }
    obj.update(fields)
    return obj


def subscription(
    customer_id: str,
    price_obj: dict[str, Any],
    *,
    quantity: int = 1,
    status: str = "active",
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    subscription_id = fields.pop("id", None) or new_id("sub")
    start = _now() if current_period_start is None else current_period_start
    # One subscription's item keeps its ID from event to event, as at Stripe.
    item = subscription_item(
        price_obj,
        subscription_id,
        quantity=quantity,
        current_period_start=start,
        current_period_end=current_period_end,
        id=fields.pop("item_id", None) or f"si_{subscription_id.partition('_')[2] or subscription_id}",
    )
    obj = {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": start,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "flexible", "updated_at": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": start,
        "currency": price_obj["currency"],
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": start,
        "status": status,
        "status_details": None,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    obj.update(fields)
    return obj


def checkout_session(
    *,
    mode: str = "subscription",
    customer_id: str | None = None,
    amount_total: int | None = None,
    currency: str | None = "eur",
    status: str = "open",
    payment_status: str = "unpaid",
    **fields: Any,
) -> dict[str, Any]:
    session_id = fields.pop("id", None) or f"cs_test_{secrets.token_hex(16)}"
    now = _now()
    obj = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "allowed_payment_method_types": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "branding_settings": None,
        "cancel_url": None,
        "client_reference_id": None,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": None if customer_id else "if_required",
        "customer_details": None,
        "customer_email": None,
        "discounts": [],
        "excluded_payment_method_types": None,
        "expires_at": now + 86400,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": None,
        "managed_payments": None,
        "metadata": {},
        "mode": mode,
        "name_collection": None,
        "optional_items": None,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "presentment_details": None,
        "recovered_from": None,
        "redirect_on_completion": None,
        "return_url": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": status,
        "submit_type": None,
        "subscription": None,
        "success_url": None,
        "tax_id_collection": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        "wallet_options": None,
    }
    obj.update(fields)
    return obj


def checkout_customer_details(
    *,
    email: str | None = None,
    name: str | None = None,
    address: dict[str, Any] | None = None,
    tax_ids: list[tuple[str, str]] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A completed session's ``customer_details``: what the buyer gave on the hosted page."""
    obj = {
        "address": None
        if address is None
        else {key: address.get(key) for key in ("city", "country", "line1", "line2", "postal_code", "state")},
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [{"type": type_, "value": value} for type_, value in tax_ids],
    }
    obj.update(fields)
    return obj


def billing_portal_session(customer_id: str, return_url: str | None = None, **fields: Any) -> dict[str, Any]:
    session_id = fields.pop("id", None) or new_id("bps")
    obj = {
        "id": session_id,
        "object": "billing_portal.session",
        "after_expiration": None,
        "configuration": new_id("bpc"),
        "created": _now(),
        "customer": customer_id,
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": return_url,
        "url": f"https://billing.stripe.com/p/session/test_{secrets.token_hex(12)}",
    }
    obj.update(fields)
    return obj


def invoice(
    customer_id: str,
    *,
    subscription_id: str | None = None,
    total: int = 0,
    tax: int = 0,
    currency: str = "eur",
    status: str = "paid",
    subscription_metadata: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    invoice_id = fields.pop("id", None) or new_id("in")
    now = _now()
    paid = status == "paid"
    parent = (
        {
            "quote_details": None,
            # Since basil an invoice's subscription is here, not at the top level.
            "subscription_details": {
                "metadata": dict(subscription_metadata or {}),
                "subscription": subscription_id,
                "subscription_proration_date": None,
            },
            "type": "subscription_details",
        }
        if subscription_id
        else None
    )
    obj = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "FR",
        "account_name": "Seller",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": total if paid else 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0 if paid else total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": not paid,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "subscription_create" if subscription_id else "manual",
        "collection_method": "charge_automatically",
        "confirmation_secret": None,
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer_id,
        "customer_account": None,
        "customer_address": None,
        "customer_email": None,
        "customer_name": None,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": now,
        "ending_balance": 0,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{invoice_id}/pdf",
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": f"{secrets.token_hex(4).upper()}-0001",
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_details": None,
        "status_transitions": {
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": now if paid else None,
            "voided_at": None,
        },
        "subtotal": total - tax,
        "subtotal_excluding_tax": total - tax,
        "test_clock": None,
        "threshold_reason": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total - tax,
        "total_pretax_credit_amounts": [],
        "total_taxes": [
            {
                "amount": tax,
                "tax_behavior": "exclusive",
                "tax_rate_details": None,
                "taxability_reason": "standard_rated",
                "taxable_amount": total - tax,
                "type": "tax_rate_details",
            }
        ]
        if tax
        else [],
        "webhooks_delivered_at": now,
    }
    obj.update(fields)
    return obj


def schedule_phase(price_obj: dict[str, Any], quantity: int, start_date: int, end_date: int | None) -> dict[str, Any]:
    """One phase of a subscription schedule."""
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": price_obj["currency"],
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end_date,
        "invoice_settings": None,
        "items": [
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": {},
                "plan": None,
                "price": price_obj["id"],
                "quantity": quantity,
                "tax_rates": [],
            }
        ],
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": start_date,
        "transfer_data": None,
        "trial": None,
        "trial_end": None,
    }


def subscription_schedule(subscription_obj: dict[str, Any], phases: list[dict[str, Any]], **fields: Any) -> dict:
    """A schedule attached to ``subscription_obj`` with the given phases, the first one current."""
    obj = {
        "id": new_id("sub_sched"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "flexible", "updated_at": None},
        "canceled_at": None,
        "completed_at": None,
        "created": _now(),
        "current_phase": {"end_date": phases[0]["end_date"], "start_date": phases[0]["start_date"]} if phases else None,
        "customer": subscription_obj["customer"],
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "days_until_due": None, "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": "release",
        "livemode": False,
        "metadata": {},
        "pause_schedules": [],
        "phases": phases,
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": subscription_obj["id"],
        "test_clock": None,
    }
    obj.update(fields)
    return obj
