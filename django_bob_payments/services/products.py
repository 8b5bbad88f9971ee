"""
The local catalog as customers see it: active products and their active pricings.

Owns the reads of the catalog (the public product list, the pricing a purchase names);
pushing the catalog to the provider belongs to ``sync``.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from django_bob_payments.models import Pricing, Product


class ProductService:
    """Reads the catalog as customers see it."""

    def catalog(self) -> QuerySet[Product]:
        """Active products with their active pricings, in two queries whatever their number."""
        active_pricings = Pricing.objects.filter(is_active=True).order_by("amount", "pk")
        return Product.objects.filter(is_active=True).prefetch_related(
            Prefetch("pricings", queryset=active_pricings, to_attr="active_pricings")
        )

    def get_active_pricing(self, pricing_id: int) -> Pricing | None:
        """A pricing that can be bought now: it and its product are active."""
        return (
            Pricing.objects.select_related("product")
            .filter(pk=pricing_id, is_active=True, product__is_active=True)
            .first()
        )
