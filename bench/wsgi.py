"""The benchmark project as a WSGI application, for ``--modes gunicorn``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
application = get_wsgi_application()
if os.environ.get("BOB_BENCH_QUEUE"):
    import tests.celery_app  # noqa: F401  (the project's Celery app, as its __init__ would load it)
