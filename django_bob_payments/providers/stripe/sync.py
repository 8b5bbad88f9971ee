"""
The sync operations at Stripe: list, create and update products, prices and customers (with
their VAT number as a tax ID), in the normalized fields ``services/sync.py`` compares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django_bob_payments.exceptions import ProviderError
from django_bob_payments.providers.base import METADATA_KEY, RemoteObject
from django_bob_payments.providers.stripe.client import StripeAPI, as_dict

ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "state", "country")
# The tax ID types a customer's VAT number is pushed as: an EU number (Northern Ireland's XI
# included) is eu_vat, a UK one gb_vat.
VAT_TAX_ID_TYPES = frozenset(("eu_vat", "gb_vat"))


def tax_id_type(number: str) -> str:
    """Stripe's tax ID type of a normalized VAT number."""
    return "gb_vat" if number.startswith("GB") else "eu_vat"


def _metadata_id(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get(METADATA_KEY)


def _normalize_address(address: dict[str, Any] | None) -> dict[str, str] | None:
    if not address:
        return None
    values = {key: (address.get(key) or "") for key in ADDRESS_FIELDS}
    return values if any(values.values()) else None


class StripeSync(StripeAPI):
    """The catalog and customer operations of ``synchronizepayments``."""

    # Products

    def _product(self, obj: Any) -> RemoteObject:
        obj = as_dict(obj)
        return RemoteObject(
            external_id=obj["id"],
            local_id=_metadata_id(obj),
            fields={"name": obj["name"], "description": obj.get("description") or "", "active": obj["active"]},
        )

    def _product_params(self, fields: dict[str, Any]) -> dict[str, Any]:
        params = dict(fields)
        if "description" in params:
            # An empty string unsets a description; Stripe refuses an empty one on create.
            params["description"] = params["description"] or ""
        return params

    def iter_products(self) -> Iterator[RemoteObject]:
        for obj in self._paginate("/v1/products", {}):
            yield self._product(obj)

    def create_product(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        params = self._product_params(fields)
        if not params.get("description"):
            params.pop("description", None)
        params["metadata"] = {METADATA_KEY: local_id}
        obj = self.call(self.client.v1.products.create, params, {"idempotency_key": idempotency_key})
        return self._product(obj)

    def update_product(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        obj = self.call(self.client.v1.products.update, external_id, self._product_params(changes))
        return self._product(obj)

    # Prices

    def _price(self, obj: Any) -> RemoteObject:
        obj = as_dict(obj)
        recurring = obj.get("recurring")
        product = obj["product"]
        return RemoteObject(
            external_id=obj["id"],
            local_id=_metadata_id(obj),
            parent_id=product if isinstance(product, str) else product["id"],
            fields={
                "amount": obj["unit_amount"],
                "currency": obj["currency"],
                "type": obj["type"],
                "interval": recurring["interval"] if recurring else "",
                "interval_count": recurring["interval_count"] if recurring else 1,
                "nickname": obj.get("nickname") or "",
                "active": obj["active"],
            },
        )

    def iter_prices(self, product_external_id: str | None = None) -> Iterator[RemoteObject]:
        for obj in self._paginate("/v1/prices", {"product": product_external_id} if product_external_id else {}):
            yield self._price(obj)

    def create_price(
        self, local_id: str, product_external_id: str, fields: dict[str, Any], idempotency_key: str
    ) -> RemoteObject:
        params: dict[str, Any] = {
            "product": product_external_id,
            "unit_amount": fields["amount"],
            "currency": fields["currency"],
            "active": fields["active"],
            "metadata": {METADATA_KEY: local_id},
        }
        if fields.get("nickname"):
            params["nickname"] = fields["nickname"]
        if fields["type"] == "recurring":
            params["recurring"] = {"interval": fields["interval"], "interval_count": fields["interval_count"]}
        obj = self.call(self.client.v1.prices.create, params, {"idempotency_key": idempotency_key})
        return self._price(obj)

    def update_price(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        unknown = set(changes) - {"nickname", "active"}
        if unknown:
            raise ValueError(f"Stripe prices cannot change {sorted(unknown)}: create a new price.")
        obj = self.call(self.client.v1.prices.update, external_id, dict(changes))
        return self._price(obj)

    # Customers

    def _customer(self, obj: Any) -> RemoteObject:
        obj = as_dict(obj)
        tax_ids = (obj.get("tax_ids") or {}).get("data", [])
        eu_vat = [tax_id for tax_id in tax_ids if tax_id["type"] in VAT_TAX_ID_TYPES]
        return RemoteObject(
            external_id=obj["id"],
            local_id=_metadata_id(obj),
            fields={
                "name": obj.get("name") or "",
                "email": obj.get("email") or "",
                "address": _normalize_address(obj.get("address")),
                "preferred_locales": list(obj.get("preferred_locales") or []),
                "tax_exempt": obj.get("tax_exempt") or "none",
                "tax_id": eu_vat[0]["value"] if eu_vat else None,
                "tax_id_ids": [tax_id["id"] for tax_id in eu_vat],
            },
        )

    def _customer_params(self, fields: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "tax_id":
                continue
            if key == "address":
                # Only the fields that have a value: the SDK types them as plain strings, and
                # Stripe refuses "" for a field that cannot be unset. No address at all unsets it.
                params["address"] = {name: value[name] for name in ADDRESS_FIELDS if value.get(name)} if value else ""
            elif key == "preferred_locales":
                if value:
                    params["preferred_locales"] = list(value)
            else:
                params[key] = value
        return params

    def iter_customers(self) -> Iterator[RemoteObject]:
        for obj in self._paginate("/v1/customers", {"expand": ["data.tax_ids"]}):
            yield self._customer(obj)

    def retrieve_customer(self, external_id: str) -> RemoteObject | None:
        try:
            obj = self.call(self.client.v1.customers.retrieve, external_id, {"expand": ["tax_ids"]})
        except ProviderError as err:
            if err.http_status == 404:
                return None
            raise
        if getattr(obj, "deleted", False):
            return None
        return self._customer(obj)

    def create_customer(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        params = {key: value for key, value in self._customer_params(fields).items() if value not in ("", None)}
        params["metadata"] = {METADATA_KEY: local_id}
        params["expand"] = ["tax_ids"]
        if fields.get("tax_id"):
            params["tax_id_data"] = [{"type": tax_id_type(fields["tax_id"]), "value": fields["tax_id"]}]
        obj = self.call(self.client.v1.customers.create, params, {"idempotency_key": idempotency_key})
        return self._customer(obj)

    def update_customer(self, remote: RemoteObject, changes: dict[str, Any]) -> RemoteObject:
        customer_id = remote.external_id
        params = self._customer_params(changes)
        if params:
            self.call(self.client.v1.customers.update, customer_id, params)
        if "tax_id" in changes:
            # Tax IDs cannot be edited: delete the old one and create the new one.
            for tax_id_id in remote.fields.get("tax_id_ids", []):
                self.call(self.client.v1.customers.tax_ids.delete, customer_id, tax_id_id)
            new_ids: list[str] = []
            if changes["tax_id"]:
                tax_id = self.call(
                    self.client.v1.customers.tax_ids.create,
                    customer_id,
                    {"type": tax_id_type(changes["tax_id"]), "value": changes["tax_id"]},
                )
                new_ids.append(tax_id.id)
            changes = {**changes, "tax_id_ids": new_ids}
        return RemoteObject(external_id=customer_id, local_id=remote.local_id, fields={**remote.fields, **changes})

    def delete_customer(self, external_id: str) -> None:
        try:
            self.call(self.client.v1.customers.delete, external_id)
        except ProviderError as err:
            if err.http_status != 404:
                raise
