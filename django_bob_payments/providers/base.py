"""
The interface every payment provider implements.

A provider turns local rows into the provider's API calls and the provider's objects into
``RemoteObject``s with normalized fields, so that the code deciding what to create, update
or archive (``services/sync.py``) knows nothing of any provider's API. Only the module of a
provider imports its SDK.

Normalized fields, compared by the sync between local rows and provider objects:

- product: ``name``, ``description``, ``active``
- price: ``amount``, ``currency``, ``type``, ``interval``, ``interval_count`` (immutable:
  a change makes a new price), and ``nickname``, ``active``
- customer: ``name``, ``email``, ``address`` (dict of line1, line2, postal_code, city,
  state, country, or None), ``preferred_locales`` (list), ``tax_exempt``, ``tax_id``
  (the EU VAT number as the provider holds it, or None)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

# The metadata key that carries our local primary key on every object we create.
METADATA_KEY = "bob_payments_id"

PRICE_IMMUTABLE_FIELDS = ("amount", "currency", "type", "interval", "interval_count")


@dataclass(frozen=True)
class RemoteObject:
    """An object at the provider: its ID, the local ID from its metadata, and its normalized fields."""

    external_id: str
    local_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    # For prices: the provider ID of the product it belongs to.
    parent_id: str | None = None


class PaymentProvider(ABC):
    """A payment provider. Methods raise ``ProviderError`` (or a subclass) when a call fails."""

    name: ClassVar[str]

    # Products

    @abstractmethod
    def iter_products(self) -> Iterator[RemoteObject]:
        """Every product at the provider, paging through them."""

    @abstractmethod
    def create_product(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        """Create a product carrying ``local_id`` in its metadata."""

    @abstractmethod
    def update_product(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        """Change only the given normalized fields of a product."""

    # Prices

    @abstractmethod
    def iter_prices(self) -> Iterator[RemoteObject]:
        """Every price at the provider, paging through them."""

    @abstractmethod
    def create_price(
        self, local_id: str, product_external_id: str, fields: dict[str, Any], idempotency_key: str
    ) -> RemoteObject:
        """Create a price of the given provider product."""

    @abstractmethod
    def update_price(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        """Change mutable fields of a price (``nickname``, ``active``)."""

    # Customers

    @abstractmethod
    def iter_customers(self) -> Iterator[RemoteObject]:
        """Every customer at the provider, with their tax ID, paging through them."""

    @abstractmethod
    def create_customer(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        """Create a customer (with its tax ID) carrying ``local_id`` in its metadata."""

    @abstractmethod
    def update_customer(self, remote: RemoteObject, changes: dict[str, Any]) -> RemoteObject:
        """Change the given normalized fields; a new ``tax_id`` replaces the old one."""

    @abstractmethod
    def delete_customer(self, external_id: str) -> None:
        """Delete a customer at the provider."""

    # Checkout, portal and webhooks: implemented with those features.

    def create_checkout_session(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{self.name} checkout sessions are not available yet.")

    def create_portal_session(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{self.name} customer portal sessions are not available yet.")
