"""Seed the example project with a small catalog and a demo user."""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from demo.models import Membership, Team
from django_bob_payments.models import Pricing, Product

CATALOG = [
    {
        "slug": "starter",
        "name": "Starter",
        "limits": {"projects": 3, "seats": 1},
        "description": "For one person and a few projects.",
        "features": ["api"],
        "max_quantity": 1,
        "sort_order": 1,
        "pricings": [(900, "month"), (9000, "year")],
    },
    {
        "slug": "team",
        "name": "Team",
        "description": "For teams: priced per seat.",
        "features": ["api", "sso", "audit-log"],
        "per_unit_limits": ["seats"],
        "limits": {"projects": 50, "seats": 1},
        "max_quantity": 25,
        "sort_order": 2,
        "pricings": [(2900, "month"), (29000, "year")],
    },
]


class Command(BaseCommand):
    help = (
        "Create a demo catalog (two plans, monthly and yearly), the superuser demo / demo, the team Acme "
        "with its owner alice / alice and its member bob / bob, then push them to the payment provider."
    )

    @transaction.atomic
    def seed(self):
        for entry in CATALOG:
            entry = dict(entry)
            pricings = entry.pop("pricings")
            product, created = Product.objects.update_or_create(slug=entry["slug"], defaults=entry)
            for amount, interval in pricings:
                Pricing.objects.get_or_create(
                    product=product,
                    amount=amount,
                    currency="eur",
                    type=Pricing.Type.RECURRING,
                    interval=interval,
                )
            self.stdout.write(f"{'Created' if created else 'Updated'} product {product.slug}")
        User = get_user_model()
        if not User.objects.filter(username="demo").exists():
            User.objects.create_superuser("demo", "demo@example.com", "demo")
            self.stdout.write("Created superuser demo (password: demo)")
        team, _ = Team.objects.get_or_create(name="Acme")
        for username, role in (("alice", Membership.Role.OWNER), ("bob", Membership.Role.MEMBER)):
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username, f"{username}@example.com", username)
                self.stdout.write(f"Created user {username} (password: {username}), {role} of team Acme")
            Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})

    def handle(self, *args, **options):
        self.seed()
        call_command("synchronizepayments", verbosity=0)
        self.stdout.write("Pushed the catalog and customers to the payment provider.")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
