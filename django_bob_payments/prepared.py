"""
Querysets compiled to SQL once and run again with new values: the webhook path's lookups.

Building and compiling a queryset costs more Python than the database takes to answer it
(a quarter of an event's time went to SQL compilation). A ``PreparedQuery`` builds its
queryset once per database and kind of values, with stand-in values, keeps the SQL and
where each value goes, and afterwards only binds the values, runs the SQL and builds the
model instances as the ORM does (converters, ``select_related``). What it cannot prepare
(a stand-in that does not appear exactly once among the parameters) runs through the ORM
every time, so the result is always the ORM's.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import inspect
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import (
    BinaryField,
    BooleanField,
    CharField,
    DateTimeField,
    Field,
    ForeignKey,
    IntegerField,
    Model,
    QuerySet,
    TextField,
    signals,
)
from django.db.models.fields import AutoFieldMixin
from django.db.models.query import get_related_populators
from django.db.models.sql import UpdateQuery
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# The connection each database alias names in a deferred_writes block of this thread: the
# statements of the block find it without Django's lookup (a context-aware local, about
# twenty times per event).
_pinned = threading.local()


def _connection(using: str) -> Any:
    """``connections[using]``, as the thread's deferred_writes block holds it where one runs."""
    pinned = getattr(_pinned, using, None)
    return pinned if pinned is not None else connections[using]


_UNPREPARED = object()


def _stand_in(index: int, value: Any) -> Any:
    """A value no real query passes, of the same kind as ``value``."""
    if isinstance(value, bool):
        raise TypeError("booleans cannot be bound")
    if isinstance(value, int):
        # Within every integer column's range, so that no lookup turns it away.
        return 2_101_234_567 + index
    if isinstance(value, str):
        return f"\x1fbob-prepared-{index}\x1f"
    raise TypeError(f"cannot bind a {type(value).__name__}")


def _stand_ins(values: tuple[Any, ...]) -> list[Any] | None:
    """A stand-in for each value; None when one of them cannot be bound."""
    try:
        return [_stand_in(index, value) for index, value in enumerate(values)]
    except TypeError:
        return None


def _positions(params: list[Any], stand_ins: list[Any]) -> list[int] | None:
    """Where each stand-in is among the compiled parameters; None unless each is there once."""
    positions = []
    for stand_in in stand_ins:
        found = [index for index, param in enumerate(params) if param == stand_in]
        if len(found) != 1:
            return None
        positions.append(found[0])
    return positions


def _bound(template: list[Any], positions: list[int], values: tuple[Any, ...]) -> list[Any]:
    """The compiled parameters with ``values`` in the stand-ins' places."""
    params = list(template)
    for position, value in zip(positions, values, strict=True):
        params[position] = value
    return params


class _Compiled:
    __slots__ = ("compiler", "fetch_mode", "for_update", "params", "positions", "reader", "sql")

    def __init__(
        self,
        compiler: Any,
        sql: str,
        params: list[Any],
        positions: list[int],
        for_update: bool,
        fetch_mode: Any = None,
    ) -> None:
        self.fetch_mode = fetch_mode
        self.compiler = compiler
        self.sql = sql
        self.params = params
        self.positions = positions
        self.for_update = for_update
        self.reader: _Reader | None = None

    def bind(self, values: tuple[Any, ...], connection: Any) -> list[Any]:
        """The statement's parameters with ``values`` in their places."""
        if self.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        return _bound(self.params, self.positions, values)

    def rows_to_objects(self, rows: list[tuple[Any, ...]], connection: Any, using: str) -> list[Any]:
        if not rows:
            return []
        reader = self.reader
        if reader is None:
            reader = self.reader = _Reader(self, connection, using)
        return reader.read(rows, connection, using)


class PreparedQuery(Generic[M]):
    """
    ``build(*values)`` returns the queryset; ``all(*values)`` and ``first(*values)`` run it.
    Values are strings or integers used as plain parameters (``field=value``), never in
    ``__in`` lists or lookups that rewrite them.
    """

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build
        self._compiled: dict[tuple[str, tuple[type, ...]], _Compiled | object] = {}

    def first(self, *values: Any, using: str = DEFAULT_DB_ALIAS) -> M | None:
        found = self.all(*values, using=using)
        return found[0] if found else None

    def all(self, *values: Any, using: str = DEFAULT_DB_ALIAS) -> list[M]:
        compiled = self.compiled(values, using)
        if compiled is None:
            return list(self.build(*values).using(using))
        connection = _connection(using)
        read = _prefetched(connection).pop((self, values), None)
        if read is not None:
            return compiled.rows_to_objects(read, connection, using)
        return self._run(compiled, values, using)

    def compiled(self, values: tuple[Any, ...], using: str) -> _Compiled | None:
        """The query compiled for values of these kinds; None when it runs through the ORM."""
        key = (using, tuple(type(value) for value in values))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(values, using)
        return compiled if isinstance(compiled, _Compiled) else None

    def _compile(self, values: tuple[Any, ...], using: str) -> _Compiled | object:
        stand_ins = _stand_ins(values)
        if stand_ins is None:
            return _UNPREPARED
        queryset = self.build(*stand_ins)
        compiler = queryset.query.get_compiler(using=using)
        connection = connections[using]
        locks = bool(queryset.query.select_for_update) and connection.features.has_select_for_update
        if locks and connection.get_autocommit():
            # Outside a transaction the ORM refuses the query; let it say so, every time.
            return _UNPREPARED
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return _UNPREPARED
        params = list(params)
        positions = _positions(params, stand_ins)
        if positions is None or not compiler.klass_info or compiler.annotation_col_map:
            return _UNPREPARED
        if compiler.has_composite_fields([column[0] for column in compiler.select[0 : compiler.col_count]]):
            return _UNPREPARED  # composite primary keys: their columns are read as tuples
        compiler.connection = None  # each run takes its own thread's connection
        # Django 6.1's fetch modes travel with the queryset into the instances it makes.
        return _Compiled(compiler, sql, params, positions, locks, getattr(queryset, "_fetch_mode", None))

    @staticmethod
    def _run(compiled: _Compiled, values: tuple[Any, ...], using: str) -> list[M]:
        connection = _connection(using)
        with statement_cursor(connection) as cursor:
            cursor.execute(compiled.sql, compiled.bind(values, connection))
            rows = cursor.fetchall()
        return compiled.rows_to_objects(rows, connection, using)


def statement_cursor(connection: Any) -> Any:
    """
    A cursor for the statements prepared here, which run again and again with new values.
    On psycopg 3 the server binds the values (as Django's ``server_side_binding`` option
    does for every query), so that psycopg prepares a statement that runs often and
    PostgreSQL neither parses nor plans it again: after the connection's
    ``prepare_threshold`` runs (5 by default; ``None`` in the database's ``OPTIONS``, as
    PgBouncer in transaction mode before 1.21 needs, never prepares). On SQLite, a cursor
    that rewrites each statement's placeholders once. Elsewhere, the connection's usual
    cursor.

    On psycopg 3 the cursor reads the connection's ``timestamptz`` values in UTC with
    ``datetime.fromisoformat`` (in C) where Django reads them in Python; any other value,
    and every value where ``USE_TZ`` is off, is read by Django's loader (``_UtcLoader``).

    """
    if connection.vendor == "sqlite":
        factory = _sqlite_cursor()
    elif connection.vendor != "postgresql" or not _psycopg3():
        return connection.cursor()
    else:
        factory = None
    _checked(connection)
    with connection.wrap_database_errors:
        if factory is None:
            cursor = _statement_cursor_class()(connection.connection, _adapters(connection))
        else:
            cursor = connection.connection.cursor(factory=factory)
    return _wrapped(connection, cursor)


def _wrapped(connection: Any, cursor: Any) -> Any:
    """The database cursor as Django hands it out: logged where queries are, with its execute wrappers."""
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


def _batch_cursor(connection: Any, *, wrapped: bool = True) -> Any:
    """
    A statement cursor for one statement of a round trip (``send``, ``prefetch``), taken
    from the connection's own: psycopg's cursors are made once (each costs more Python than
    running a statement in a pipeline) and each serves again in the next round trip, once
    its results were read. ``_start_batch`` starts a round trip's count; ``wrapped=False``
    gives the psycopg cursor itself (the BEGIN and COMMIT, which Django does not see).
    """
    raw = connection.connection
    pool = getattr(connection, "_bob_cursors", None)
    if pool is None or pool[0] is not raw:
        pool = connection._bob_cursors = [raw, [], 0]
    cursors, index = pool[1], pool[2]
    if index == len(cursors):
        with connection.wrap_database_errors:
            cursors.append(_statement_cursor_class()(raw, _adapters(connection)))
    pool[2] = index + 1
    cursor = cursors[index]
    return _wrapped(connection, cursor) if wrapped else cursor


def _start_batch(connection: Any) -> None:
    """The next ``_batch_cursor`` is the first of a round trip: every cursor is free again."""
    pool = getattr(connection, "_bob_cursors", None)
    if pool is not None:
        pool[2] = 0


def _checked(connection: Any) -> None:
    """What Django checks before it gives a cursor, done once for the statements of one round trip."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()


def _adapters(connection: Any) -> Any:
    """The adapters of the connection's statement cursors, made once per psycopg connection."""
    raw = connection.connection
    held = getattr(connection, "_bob_adapters", None)
    if held is not None and held[0] is raw:
        return held[1]
    from psycopg.adapt import AdaptersMap
    from psycopg.pq import Format

    adapters = AdaptersMap(raw.adapters)
    loader = raw.adapters.get_loader(raw.adapters.types["timestamptz"].oid, Format.TEXT)
    # datetime.fromisoformat reads PostgreSQL's "+00" from Python 3.11.
    if sys.version_info >= (3, 11) and getattr(loader, "timezone", None) is datetime.timezone.utc:
        adapters.register_loader("timestamptz", _utc_loader(loader))
    connection._bob_adapters = (raw, adapters)
    return adapters


@functools.cache
def _statement_cursor_class() -> type:
    import psycopg

    class StatementCursor(psycopg.Cursor):
        """psycopg's cursor, with adapters shared by the connection's statement cursors."""

        def __init__(self, connection: Any, adapters: Any) -> None:
            self._bob_adapters = adapters
            super().__init__(connection)

        @property
        def adapters(self) -> Any:
            return self._bob_adapters

    return StatementCursor


@functools.cache
def _utc_loader(base: type) -> type:
    """
    Django's ``timestamptz`` loader where ``USE_TZ`` is on (``base``), with the values
    PostgreSQL sends in UTC (as Django's connections ask) read by ``datetime.fromisoformat``:
    the same datetime, in UTC. Any other text (another offset, another DateStyle, a year
    beyond 9999, infinity) is read by ``base``, which says what it cannot read.
    """
    from psycopg.adapt import Loader

    utc = datetime.timezone.utc
    parse = datetime.datetime.fromisoformat

    class _UtcLoader(base):  # type: ignore[misc, valid-type]
        def __init__(self, oid: int, context: Any = None) -> None:
            # base's own set-up (the session's time zone and DateStyle) waits for a value
            # it has to read.
            Loader.__init__(self, oid, context)
            self._context = context
            self._ready = False

        def load(self, data: Any) -> datetime.datetime:
            try:
                value = parse(data.decode() if isinstance(data, bytes) else bytes(data).decode())
            except ValueError:
                pass
            else:
                if value.tzinfo is utc:
                    return value
            if not self._ready:
                base.__init__(self, self.oid, self._context)
                self._ready = True
            return base.load(self, data)

    return _UtcLoader


@functools.cache
def _psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


@functools.cache
def _sqlite_cursor() -> type:
    """
    Django's SQLite cursor, which rewrites each statement's ``%s`` placeholders as ``?`` on
    every run (a regular expression), with the rewritten statements kept.
    """
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    converted: dict[str, str] = {}

    class ConvertedOnce(SQLiteCursorWrapper):
        def convert_query(self, query: str, **kwargs: Any) -> str:
            if kwargs.get("param_names") is not None:
                return super().convert_query(query, **kwargs)
            found = converted.get(query)
            if found is None:
                found = converted[query] = super().convert_query(query, **kwargs)
            return found

    return ConvertedOnce


def _prefetched(connection: Any) -> dict[tuple[PreparedQuery, tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows ``prefetch`` read on this connection that no query took yet."""
    try:
        return connection._bob_prefetched
    except AttributeError:
        connection._bob_prefetched = {}
        return connection._bob_prefetched


def can_pipeline(connection: Any) -> bool:
    """Whether the connection sends several statements in one round trip (psycopg 3's pipeline mode)."""
    if connection.vendor != "postgresql":
        return False
    connection.ensure_connection()
    return hasattr(connection.connection, "pipeline") and _pipeline_supported()  # psycopg 2 has none


@functools.cache
def _pipeline_supported() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def prefetch(
    queries: list[tuple[PreparedQuery[Any] | NextKey, tuple[Any, ...]]], using: str = DEFAULT_DB_ALIAS
) -> None:
    """
    Run prepared queries together, in one round trip where the database can (PostgreSQL with
    psycopg 3, in pipeline mode; with the BEGIN of a transaction that starts there), in the
    order given, so that a ``SELECT ... FOR UPDATE`` first holds its lock for those after
    it. Each query's next ``all`` or ``first`` with the same values takes the rows read,
    once. Elsewhere it does nothing and the queries run when they are asked. The rows hold
    until ``forget_prefetched``. Writes that ``deferred_writes`` holds go first, so the rows
    see them: prefetch only what no later write changes before it is read.
    """
    connection = _connection(using)
    if not can_pipeline(connection):
        return
    planned = [(query, values, query.compiled(values, using)) for query, values in queries]
    planned = [(query, values, compiled) for query, values, compiled in planned if compiled is not None]
    cursors = []

    def read() -> None:
        _checked(connection)
        for _query, values, compiled in planned:
            cursor = _batch_cursor(connection)
            cursors.append(cursor)
            cursor.execute(compiled.sql, compiled.bind(values, connection))

    writes = _deferring(connection)
    if writes is not None and (writes.queue or writes.begin) and not writes.sending:
        # The held writes (and the transaction's BEGIN) go first, in the same round trip.
        writes.send(read)
    else:
        if writes is None or not writes.sending:
            _start_batch(connection)
        with connection.wrap_database_errors, connection.connection.pipeline():
            read()
    store = _prefetched(connection)
    for (query, values, _compiled), cursor in zip(planned, cursors, strict=True):
        store[(query, values)] = cursor.fetchall()


class NextKey:
    """
    The next value of a model's automatic primary key, read from its sequence (PostgreSQL)
    by ``prefetch`` with other lookups: a row and the rows that point to it are then
    written together (``insert_row(obj, defer=True)`` with ``obj.pk`` set to it), with no
    wait for the key an INSERT returns. ``take()`` gives the value read, once; None where
    nothing was read (elsewhere than PostgreSQL, or once ``forget_prefetched`` dropped it).
    A value taken and not used is a gap in the keys, as a rolled-back insert leaves.
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    def compiled(self, values: tuple[Any, ...], using: str) -> _KeyStatement | None:
        connection = connections[using]
        meta = self.model._meta
        if connection.vendor != "postgresql" or not isinstance(meta.pk, AutoFieldMixin) or meta.parents:
            return None
        return _KeyStatement(connection.ops.quote_name(meta.db_table), meta.pk.column)

    def take(self, using: str = DEFAULT_DB_ALIAS) -> int | None:
        rows = _prefetched(_connection(using)).pop((self, ()), None)
        return rows[0][0] if rows else None


class _KeyStatement:
    """The read of a sequence's next value, as ``prefetch`` runs compiled queries."""

    __slots__ = ("params",)
    sql = "SELECT nextval(pg_get_serial_sequence(%s, %s))"

    def __init__(self, table: str, column: str) -> None:
        self.params = [table, column]

    def bind(self, values: tuple[Any, ...], connection: Any) -> list[Any]:
        return list(self.params)


def forget_prefetched(using: str = DEFAULT_DB_ALIAS) -> None:
    """Drop the rows ``prefetch`` read that no query took."""
    _prefetched(_connection(using)).clear()


class _Reader:
    """
    How the rows of a compiled query become model instances, worked out once: the columns of
    each model, the converters of each column and the populators of ``select_related``, as
    the ORM's compiler works them out on every run.
    """

    __slots__ = ("converters", "fetch_mode", "from_db", "init_list", "populators", "span")

    def __init__(self, compiled: _Compiled, connection: Any, using: str) -> None:
        compiler = copy.copy(compiled.compiler)
        compiler.connection = connection
        select, klass_info = compiler.select, compiler.klass_info
        model_cls = klass_info["model"]
        select_fields = klass_info["select_fields"]
        self.span = (select_fields[0], select_fields[-1] + 1)
        self.init_list = [column[0].target.attname for column in select[self.span[0] : self.span[1]]]
        expressions = [column[0] for column in select[0 : compiler.col_count]]
        self.converters = list(compiler.get_converters(expressions).items())
        self.fetch_mode = compiled.fetch_mode
        if self.fetch_mode is None:
            self.populators = get_related_populators(klass_info, select, using)
            self.from_db = model_cls.from_db
        else:
            self.populators = get_related_populators(klass_info, select, using, self.fetch_mode)
            self.from_db = functools.partial(model_cls.from_db, fetch_mode=self.fetch_mode)

    def read(self, rows: list[tuple[Any, ...]], connection: Any, using: str) -> list[Any]:
        start, end = self.span
        converters, populators, from_db, init_list = self.converters, self.populators, self.from_db, self.init_list
        fetch_mode = self.fetch_mode
        found = []
        peers: list[Any] = []
        for raw in rows:
            row = list(raw)
            for position, (functions, expression) in converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
            obj = from_db(using, init_list, row[start:end])
            if fetch_mode is not None and fetch_mode.track_peers:
                peers.append(weakref.ref(obj))
                obj._state.peers = peers
            for populator in populators:
                populator.populate(row, obj)
            found.append(obj)
        return found


_SLOW = object()

# The methods a field's value goes through on its way to the database (get_db_prep_save).
_PREP_METHODS = ("get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")


def _inherits(field: Any, base: type, names: tuple[str, ...] = _PREP_METHODS) -> bool:
    """Whether ``field`` is a ``base`` that prepares values with ``base``'s own methods."""
    cls = type(field)
    return isinstance(field, base) and all(getattr(cls, name) is getattr(base, name) for name in names)


def _adapter(field: Any) -> Callable[[Any, Any], Any]:
    """
    ``adapter(value, ops)``: what ``field.get_db_prep_save(value, connection)`` returns for
    the values the app writes most (None, and a str, bool, int or aware datetime of the
    field's kind, where the field prepares values as Django's own class does), without its
    chain of calls; ``_SLOW`` for any other value, which goes through ``get_db_prep_save``.
    The backend's own step (``ops``, the connection's operations) is still taken: psycopg's
    integer types, SQLite's datetimes as text, MySQL's refusal of a zero key.
    """
    if _inherits(field, ForeignKey, ("get_db_prep_save",)):
        target = field.target_field
        if (
            _inherits(target, AutoFieldMixin, ("get_db_prep_value",))
            and _inherits(target, IntegerField, ("get_prep_value",))
            and _inherits(target, Field, ("get_db_prep_save",))
        ):

            def foreign_key(value: Any, ops: Any) -> Any:
                if value is None:
                    return None
                return ops.validate_autopk_value(value) if type(value) is int else _SLOW

            return foreign_key
    elif _inherits(field, CharField) or _inherits(field, TextField):
        return lambda value, ops: value if value is None or type(value) is str else _SLOW
    elif _inherits(field, BooleanField):
        return lambda value, ops: value if value is None or type(value) is bool else _SLOW
    elif _inherits(field, DateTimeField):

        def date_time(value: Any, ops: Any) -> Any:
            if value is None:
                return None
            if type(value) is datetime.datetime and value.tzinfo is not None:
                return ops.adapt_datetimefield_value(value)
            return _SLOW

        return date_time
    elif _inherits(field, IntegerField) and not isinstance(field, AutoFieldMixin):
        internal_type = field.get_internal_type()

        def integer(value: Any, ops: Any) -> Any:
            if value is None or type(value) is int:
                return ops.adapt_integerfield_value(value, internal_type)
            return _SLOW

        return integer
    return lambda value, ops: _SLOW


def _prepared_values(
    obj: Model, targets: list[tuple[Any, Callable[[Any, Any], Any], bool]], add: bool, connection: Any
) -> list[Any] | None:
    """The parameters of ``obj``'s row, as the ORM prepares them; None for a value only the ORM can write."""
    ops = connection.ops
    params = []
    for field, adapt, plain in targets:
        # Field.pre_save reads the attribute; DateTimeField's sets auto_now values.
        value = getattr(obj, field.attname) if plain else field.pre_save(obj, add)
        prepared = adapt(value, ops)
        if prepared is _SLOW:
            if hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save"):
                # An expression or a model instance: the ORM knows what to do with it.
                return None
            prepared = field.get_db_prep_save(value, connection=connection)
        params.append(prepared)
    return params


def _targets(fields: list[Any]) -> list[tuple[Any, Callable[[Any, Any], Any], bool]]:
    """Each field with its adapter, and whether its pre_save only reads the attribute."""
    return [(field, _adapter(field), type(field).pre_save is Field.pre_save) for field in fields]


_UPDATES: dict[tuple[type[Model], tuple[str, ...], str], tuple[str, list[Any]] | None] = {}


def save_fields(obj: Model, fields: tuple[str, ...] | None = None, using: str = DEFAULT_DB_ALIAS) -> None:
    """
    ``obj.save(update_fields=fields)`` for a row that exists (all its fields when ``fields``
    is None), with the UPDATE statement built once per model and fields: the same signals,
    the same ``auto_now`` values, the same error when no row was updated. Anything the
    statement cannot carry as a plain parameter goes through ``save()``.
    """
    model = type(obj)
    key = (model, fields or (), using)
    if key not in _UPDATES:
        _UPDATES[key] = _update_statement(model, fields, using)
    prepared = _UPDATES[key]
    if prepared is None or obj._state.adding or obj.pk is None:
        obj.save(update_fields=fields, using=using)
        return
    sql, targets = prepared
    connection = _connection(using)
    meta = model._meta
    # As save() says it: None when every field is saved.
    update_fields = None if fields is None else frozenset(fields)
    signals.pre_save.send(sender=model, instance=obj, raw=False, using=using, update_fields=update_fields)
    params = _prepared_values(obj, targets, False, connection)
    if params is None:
        obj.save(update_fields=[field.name for field, _, _ in targets], using=using)
        return
    params.append(meta.pk.get_db_prep_value(obj.pk, connection))

    def saved(cursor: Any) -> None:
        if cursor.rowcount == 0:
            raise DatabaseError("Save with update_fields did not affect any rows.")
        obj._state.db = using
        signals.post_save.send(
            sender=model, instance=obj, created=False, raw=False, using=using, update_fields=update_fields
        )

    writes = _deferring(connection)
    if writes is not None:
        writes.queue.append((sql, params, saved))
        return
    with statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        saved(cursor)


def _update_statement(model: type[Model], fields: tuple[str, ...] | None, using: str) -> tuple[str, list[Any]] | None:
    meta = model._meta
    if meta.parents or meta.proxy:
        return None
    if fields is None:
        targets = [field for field in meta.concrete_fields if not field.primary_key]
    else:
        targets = [meta.get_field(name) for name in fields]
        if any(not field.concrete or field.primary_key or field.many_to_many for field in targets):
            return None
    if any(_special_placeholder(field) for field in targets):
        return None
    quote = connections[using].ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in targets)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s", _targets(targets)


_INSERTS: dict[tuple[type[Model], str], tuple[str, list[Any], bool] | None] = {}


def insert_row(obj: Model, using: str = DEFAULT_DB_ALIAS, *, defer: bool = False) -> None:
    """
    ``obj.save(force_insert=True)`` for a new row with an automatic primary key, with the
    INSERT statement built once per model: the same signals, ``auto_now_add`` values and
    primary key set on ``obj``; an IntegrityError as the ORM raises it. With ``defer``,
    inside ``deferred_writes``, the INSERT waits for the next statement (``obj.pk`` is set
    then): for a row whose key nothing needs before.
    """
    model = type(obj)
    connection = _connection(using)
    # A key read before (NextKey): the row is written with it, and held back whole.
    keyed = obj.pk is not None and defer and _deferring(connection) is not None
    key = (model, using, keyed)
    if key not in _INSERTS:
        _INSERTS[key] = _insert_statement(model, using, keyed)
    prepared = _INSERTS[key]
    if prepared is None or (obj.pk is not None and not keyed):
        obj.save(force_insert=True, using=using)
        return
    sql, targets, returning = prepared
    signals.pre_save.send(sender=model, instance=obj, raw=False, using=using, update_fields=None)
    params = _prepared_values(obj, targets, True, connection)
    if params is None:
        obj.save(force_insert=True, using=using)
        return
    meta = model._meta

    def inserted(cursor: Any) -> None:
        if keyed:
            pk = obj.pk
        elif returning:
            (pk,) = _returned_row(connection, cursor)
        else:
            pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        for converter in meta.pk.get_db_converters(connection):
            pk = converter(pk, meta.pk, connection)
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = using
        signals.post_save.send(sender=model, instance=obj, created=True, raw=False, using=using, update_fields=None)

    writes = _deferring(connection) if defer and (returning or keyed) else None
    if writes is not None:
        writes.queue.append((sql, params, inserted))
        if keyed:
            # The row exists for every statement after it: an update of it is held back too.
            obj._state.adding = False
            obj._state.db = using
        return
    with statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        inserted(cursor)


def _insert_statement(model: type[Model], using: str, keyed: bool = False) -> tuple[str, list[Any], bool] | None:
    """The INSERT of a row and how to read its key back; ``keyed``: of a row whose key is set."""
    meta = model._meta
    connection = connections[using]
    if meta.parents or meta.proxy or not meta.pk.db_returning:
        return None
    targets = [field for field in meta.concrete_fields if keyed or field is not meta.pk]
    placeholders = []
    for field in targets:
        if field.db_returning and field is not meta.pk:
            return None
        if isinstance(field, BinaryField) and not field.null:
            # Bytes, never NULL: the placeholder the database takes for them ("_binary %s" on MySQL).
            placeholders.append(_binary_placeholder(connection))
        elif _special_placeholder(field):
            return None
        else:
            placeholders.append("%s")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in targets)
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(placeholders)})"
    if keyed:
        return sql, _targets(targets), False
    if connection.features.can_return_columns_from_insert:
        # Django 6.0 renamed the operation (returning_columns, for updates too).
        columns = getattr(connection.ops, "returning_columns", None) or connection.ops.return_insert_columns
        returning, params = columns([meta.pk])
        if params:
            return None
        return f"{sql} {returning}", _targets(targets), True
    if connection.vendor == "postgresql":
        return None  # its last_insert_id is a query more: the ORM does better
    return sql, _targets(targets), False


def _returned_row(connection: Any, cursor: Any) -> tuple[Any, ...]:
    """The row an INSERT ... RETURNING gave, read as the backend reads it (before and since Django 6.0)."""
    if hasattr(connection.ops, "fetch_returned_rows"):
        return connection.ops.fetch_returned_rows(cursor, ())[0]
    return connection.ops.fetch_returned_insert_columns(cursor, ())


def _special_placeholder(field: Any) -> bool:
    """Whether the field writes its values with SQL of its own (get_placeholder; get_placeholder_sql since 6.1)."""
    return hasattr(field, "get_placeholder") or hasattr(field, "get_placeholder_sql")


def _binary_placeholder(connection: Any) -> str:
    """The placeholder of a bytes value: Django 6.1 returns it with its parameters, and takes the compiler."""
    operation = connection.ops.binary_placeholder_sql
    if "compiler" in inspect.signature(operation).parameters:
        placeholder, _ = operation(b"", None)
        return placeholder
    return operation(b"")


class PreparedUpdate:
    """
    ``build(*values)`` returns a queryset and the fields to set, as ``queryset.update(**fields)``
    takes them; ``run(*values)`` runs that UPDATE, compiled once per database and kind of
    values (as ``PreparedQuery`` compiles a lookup), and held back like ``save_fields`` in a
    ``deferred_writes`` block (so the number of rows is not returned). Values are strings or
    integers, as for ``PreparedQuery``; the ORM runs what cannot be prepared.
    """

    def __init__(self, build: Callable[..., tuple[QuerySet[Any], dict[str, Any]]]) -> None:
        self.build = build
        self._compiled: dict[tuple[str, tuple[type, ...]], tuple[str, list[Any], list[int]] | None] = {}

    def run(self, *values: Any, using: str = DEFAULT_DB_ALIAS) -> None:
        key = (using, tuple(type(value) for value in values))
        if key not in self._compiled:
            self._compiled[key] = self._compile(values, using)
        compiled = self._compiled[key]
        if compiled is None:
            queryset, fields = self.build(*values)
            queryset.using(using).update(**fields)
            return
        sql, template, positions = compiled
        params = _bound(template, positions, values)
        connection = _connection(using)
        writes = _deferring(connection)
        if writes is not None:
            writes.queue.append((sql, params, _ignore))
            return
        with statement_cursor(connection) as cursor:
            cursor.execute(sql, params)

    def _compile(self, values: tuple[Any, ...], using: str) -> tuple[str, list[Any], list[int]] | None:
        stand_ins = _stand_ins(values)
        if stand_ins is None:
            return None
        queryset, fields = self.build(*stand_ins)
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(fields)
        query.annotations = {}
        if query.related_updates or query.combinator:
            return None
        try:
            sql, params = query.get_compiler(using).as_sql()
        except EmptyResultSet:
            return None
        params = list(params)
        positions = _positions(params, stand_ins)
        return None if positions is None else (sql, params, positions)


def _ignore(cursor: Any) -> None:
    pass


# Writes held back

_Write = tuple[str, list[Any], Callable[[Any], None]]


class _DeferredWrites:
    """The writes a ``deferred_writes`` block holds back on a connection, and how they are sent."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.queue: list[_Write] = []
        # The transaction's BEGIN, sent with the first statement (deferred_writes).
        self.begin = False
        self.sending = False
        # The database error a send raised: code other than the writer's may have caught it.
        self.error: DatabaseError | None = None

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        """The connection's execute wrapper: the held writes go first, with this statement where it can."""
        if self.sending or not (self.queue or self.begin):
            return execute(sql, params, many, context)
        if many or getattr(context["cursor"].cursor, "name", None):
            # executemany and named cursors run outside a pipeline: the writes go alone first.
            self.send()
            return execute(sql, params, many, context)
        return self.send(lambda: execute(sql, params, many, context))

    def send(self, then: Callable[[], Any] | None = None, commit: bool = False) -> Any:
        """
        Send the held writes, and ``then``'s statement after them (or the COMMIT of the
        transaction), in one round trip.
        """
        queue, self.queue = self.queue, []
        begin, self.begin = self.begin, False
        connection = self.connection
        cursors = []
        result = None
        committed = None
        self.sending = True
        _start_batch(connection)
        try:
            try:
                with connection.wrap_database_errors, connection.connection.pipeline():
                    if begin:
                        began = _batch_cursor(connection, wrapped=False)
                        cursors.append(began)
                        began.execute("BEGIN")
                    if queue:
                        _checked(connection)
                    for sql, params, _done in queue:
                        cursor = _batch_cursor(connection)
                        cursors.append(cursor)
                        cursor.execute(sql, params)
                    if then is not None:
                        result = then()
                    if commit:
                        # Not through Django's cursor: Django logs the COMMIT it then finds done.
                        committed = _batch_cursor(connection, wrapped=False)
                        committed.execute("COMMIT")
            except DatabaseError as err:
                # As the ORM's writes do (mark_for_rollback_on_error): code that catches the
                # error (perhaps not its own) cannot go on, nor commit, in this transaction.
                if connection.in_atomic_block:
                    connection.needs_rollback = True
                self.error = err
                raise
            if committed is not None and committed.statusmessage != "COMMIT":
                # PostgreSQL ends a transaction that failed with ROLLBACK, whatever was asked.
                raise DatabaseError("The transaction had failed and was rolled back instead of committed.")
            for (_sql, _params, done), cursor in zip(queue, cursors[1:] if begin else cursors, strict=True):
                done(cursor)
        finally:
            self.sending = False
        return result


@functools.cache
def _idle() -> Any:
    from psycopg.pq import TransactionStatus

    return TransactionStatus.IDLE


def _deferring(connection: Any) -> _DeferredWrites | None:
    return getattr(connection, "_bob_deferred_writes", None)


@contextlib.contextmanager
def deferred_writes(using: str = DEFAULT_DB_ALIAS, *, commit: bool = False) -> Iterator[None]:
    """
    Within the block, on PostgreSQL with psycopg 3 and inside a transaction, hold back the
    UPDATEs of ``save_fields``, ``PreparedUpdate`` and the INSERTs of
    ``insert_row(defer=True)``, and send them in one round trip with the next statement the
    connection runs (through Django's cursors), or at the end of the block: a write costs no
    wait of its own. Reads after a write see it, as they would without the block. What
    differs: a write's error (a constraint, no row updated) is raised by the statement that
    sends it, and its ``post_save`` is sent then. Elsewhere the block does nothing.

    ``commit`` is for a block that is all its ``atomic`` block holds
    (``with transaction.atomic(), deferred_writes(commit=True):``): when that atomic block
    is the outermost one and commits on exit, the last writes go with the COMMIT itself,
    and Django's commit finds the transaction committed. The errors the COMMIT raises (a
    deferred foreign key) come from the end of the block, inside the atomic block, which
    then rolls back as for any error.

    With ``commit``, the transaction's BEGIN is held back too, and sent with the block's
    first statement (psycopg would wait for its answer alone first): a statement must not
    bypass Django's cursors in such a block (``connection.connection.cursor()``), or it
    runs before the transaction starts.

    A database error raised while held writes are sent marks the transaction for rollback,
    as the ORM's writes do. The block raises TransactionManagementError, rather than end as
    if all was written, when such an error was caught before it reached the block's end, or
    when writes are still held in a transaction marked for rollback. Code that catches the
    database errors of its own statements calls ``send_held_writes()`` first, so that it
    never catches a held write's.
    """
    connection = connections[using]
    pinned = getattr(_pinned, using, None)
    setattr(_pinned, using, connection)
    try:
        if not connection.in_atomic_block or _deferring(connection) is not None or not can_pipeline(connection):
            yield
        else:
            yield from _deferring_writes(connection, commit)
    finally:
        setattr(_pinned, using, pinned)


def _deferring_writes(connection: Any, commit: bool) -> Iterator[None]:
    commits = commit and len(connection.atomic_blocks) == 1 and connection.commit_on_exit
    writes = _DeferredWrites(connection)
    raw = connection.connection
    if commits and not raw.autocommit and raw.info.transaction_status == _idle():
        # psycopg would send the BEGIN before the first statement and wait for its answer:
        # the block sends it itself, in the same round trip as that statement. psycopg is
        # told not to (autocommit); Django's atomic block sets it back when it ends.
        raw.autocommit = True
        writes.begin = True
    connection._bob_deferred_writes = writes
    try:
        with connection.execute_wrapper(writes):
            yield
            if writes.error is not None:
                # A held write failed and the error was caught before it reached the block's
                # end: the writer never heard of it. The atomic block rolls back; say so.
                raise TransactionManagementError("A write held back in this transaction failed.") from writes.error
            if connection.needs_rollback:
                if writes.queue:
                    # Rolled back at the end of the atomic block: the writes would be lost
                    # without a word, as Django refuses any query after such an error.
                    raise TransactionManagementError(
                        "An error occurred in the current transaction: the writes held back are not sent."
                    )
            elif commits and writes.begin and not writes.queue:
                writes.begin = False  # nothing was run: no transaction to open, nor to commit
            elif commits:
                writes.send(commit=True)
            elif writes.queue:
                writes.send()
    finally:
        writes.queue.clear()
        del connection._bob_deferred_writes


def send_held_writes(using: str = DEFAULT_DB_ALIAS) -> None:
    """Send what a ``deferred_writes`` block holds now (nothing to do elsewhere)."""
    writes = _deferring(_connection(using))
    if writes is not None and (writes.queue or writes.begin) and not writes.sending:
        writes.send()
