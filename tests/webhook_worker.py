"""A process that delivers webhook bodies, for the concurrency tests. Imports Django only once started."""

import os


def deliver(db_name: str, bodies: list, results) -> None:
    """Set up Django on ``db_name`` and post each body, signed, through the test client."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = db_name
    import django

    django.setup()
    from django.test import Client

    from django_bob_payments.testing import post_event

    client = Client()
    try:
        results.put([post_event(client, body, "whsec_tests").status_code for body in bodies])
    except Exception as err:  # reported to the test, which fails with it
        results.put([repr(err)])
