"""
``python manage.py rundemo``: the example site in one command. It migrates the database
(SQLite by default), seeds the demo data, starts a local VIES stand-in, and serves the site
on a free port, printing the address and the demo logins.
"""

import socket

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from django_bob_payments.conf import bob_settings
from django_bob_payments.testing.vies import ViesEmulator

# The numbers the local VIES knows, and the member state it pretends is down.
VALID_NUMBERS = {
    "DE136695976": ("Beispiel GmbH", "Hauptstrasse 1, 10115 Berlin"),
    "NL004495445B01": ("Voorbeeld B.V.", "Dam 1, 1012 JS Amsterdam"),
    "FR40303265045": ("Exemple SARL", "1 rue de Rivoli, 75001 Paris"),
}
DOWN_STATE = "IT"


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = (
        "Migrate, seed the demo data, and serve the example site on a free port (or --port), with a "
        "local VIES stand-in unless --real-vies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to serve on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=0, help="Port to serve on (default: a free one).")
        parser.add_argument(
            "--real-vies",
            action="store_true",
            help="Check VAT numbers at the VIES_API_URL of the settings instead of the local stand-in.",
        )

    def handle(self, *args, host, port, real_vies, **options):
        if not 0 <= port <= 65535:
            raise CommandError(f"--port must be between 1 and 65535, not {port}.")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("seeddemo", stdout=self.stdout)
        vies_line = f"VAT numbers are checked at {bob_settings.VIES_API_URL}."
        if not real_vies:
            vies = ViesEmulator()
            for number, (name, address) in VALID_NUMBERS.items():
                vies.register(number, name=name, address=address)
            vies.fail(DOWN_STATE, "MS_UNAVAILABLE")
            settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_API_URL": vies.start()}
            bob_settings.reload()
            vies_line = (
                f"VAT numbers go to a local VIES stand-in: {', '.join(VALID_NUMBERS)} are valid, any other "
                f"well-formed number is not registered, and Italy ({DOWN_STATE}...) is unreachable."
            )
        port = port or free_port(host)
        url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
        provider = bob_settings.PROVIDER
        self.stdout.write(
            self.style.SUCCESS(f"\nOpen {url}\n") + "Logins (username / password):\n"
            "  alice / alice  owner of the team Acme (pays for it)\n"
            "  bob / bob      member of Acme without the billing role\n"
            "  demo / demo    superuser, for the admin at /admin/\n"
            "  or sign up as a new user.\n"
            f"Payments: the {provider} provider"
            + (" (no money moves)." if provider == "fake" else ".")
            + f"\n{vies_line}\nStop with Ctrl-C.\n"
        )
        self.stdout.flush()
        call_command("runserver", f"{host}:{port}", use_reloader=False)
