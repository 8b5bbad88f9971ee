"""
SQLite with two writer processes: with the options the deployment guide recommends, no
delivery is answered 500 "database is locked" (bench/sqlite_writers.py measures more).
"""

from tests.sqlite_writers import RECOMMENDED_OPTIONS, run


def test_two_writers_on_sqlite_are_never_told_the_database_is_locked():
    result = run(RECOMMENDED_OPTIONS, deliveries=600, workers=2)
    assert result["statuses"] == {200: result["deliveries"]}
