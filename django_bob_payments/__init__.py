"""django-bob-payments: billing on Stripe for Django projects, with the local catalog as the truth."""

__version__ = "0.1.0.dev0"
