"""
SQLite with several writers: two processes deliver 2,000 webhook events to one SQLite file,
with Django's default options and with the deployment guide's; see tests/sqlite_writers.py.

    python bench/sqlite_writers.py [--workers 2] [--deliveries 2000]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sqlite_writers import main

if __name__ == "__main__":
    sys.exit(main())
