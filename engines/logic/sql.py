"""Compile JsonLogic filters to SQLAlchemy Core expressions over JSON records.

Records of every form live as JSON documents in one table (``records.data``: JSONB on
PostgreSQL, JSON text on SQLite). A list or report filter is a JsonLogic rule; this module
turns the *supported subset* of JsonLogic into one boolean SQL expression, so that nothing
ever loads a form's records into Python to filter them. It builds expressions only: it never
executes SQL and knows nothing about sessions or the platform.

The concept
    A filter has the same meaning in SQL as in Python: for every record, the compiled
    expression is true exactly when ``evaluate(rule, record_data, now=now)`` is truthy.
    JsonLogic's treatment of ``null`` (absent fields, JSON ``null``) is famously irregular
    (``null == 0`` and ``null < 5`` are true, ``null < "a"`` is false, ``null != "x"`` is
    true), so the compiler does not re-implement it: for each condition over one field it
    *asks the evaluator* what the condition gives for an absent field, for a ``null`` one and,
    where the answer only depends on a few value classes (``""``, ``0``, ``false``, ``[]``,
    ``{}``), for each class, and adds those cases to the SQL explicitly. Only the behaviour
    for ordinary non-null values is translated by hand, per field type.

Invariants
    * Every compiled expression is *two-valued in effect*: SQL ``NULL`` only ever stands for
      "false" (``AND``/``OR`` preserve that under three-valued logic), and negation is
      written ``x IS NOT TRUE`` so a ``NULL`` never turns into "true" by accident.
    * Every value from the rule is a bound parameter. Field keys (``^[a-z][a-z0-9_]*$``,
      checked) are the only text rendered into SQL, as JSON path literals, because
      PostgreSQL expression indexes only match literal paths.
    * :func:`field_value` is *the* expression of a field: filters, ORDER BY and PostgreSQL
      expression indexes (:func:`index_expression_sql`) all use it, so indexes match.
      PostgreSQL text is compared with ``COLLATE "C"`` (code point order, like Python and
      SQLite's default ``BINARY``), so text order does not depend on the server's locale.
    * A sub-expression that reads no data (``{"today": []}``, ``{"date_add": [...]}``) is
      evaluated once in Python with :func:`~formloom.engines.logic.evaluate` and becomes a
      bound literal. Anything else outside the subset raises :class:`FilterError` with a
      JSON pointer to the offending operator; nothing is ever silently evaluated in Python.
    * Datetime literals compared with datetime fields are normalised to UTC
      ``YYYY-MM-DDTHH:MM:SSZ`` (the stored format), so ``"...T10:00:00+08:00"`` means that
      instant. System datetime columns compare as their UTC ``YYYY-MM-DDTHH:MM:SSZ`` text
      would, but through range conditions on the real column so their indexes are used.

See docs/filters.md for the supported subset and the per-dialect translations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.sql.elements import ColumnElement, False_, True_

from . import dates
from .analysis import ARITY
from .bins import ROUNDING_PLACES, width_scale
from .errors import InvalidArguments, LogicError
from .evaluator import evaluate
from .zones import offset_periods, settled_offset

__all__ = [
    "FIELD_TYPES",
    "MAX_FIELD_NAMES",
    "LONG_TEXT_TYPES",
    "PROJECTED_TYPES",
    "MAX_LIST_VALUES",
    "Dialect",
    "SUPPORTED_OPERATORS",
    "bin_number",
    "bin_width_problem",
    "FilterError",
    "FilterTarget",
    "compile_filter",
    "clock_part",
    "field_value",
    "index_expression_sql",
    "local_time",
]

Dialect: TypeAlias = Literal["postgresql", "sqlite"]
Kind: TypeAlias = Literal["text", "number", "boolean", "array", "object", "timestamp"]
Predicate: TypeAlias = ColumnElement[bool]

#: Operators a filter may use over fields (constant sub-expressions may use any operator).
# fmt: off
SUPPORTED_OPERATORS: Final[tuple[str, ...]] = (
    "var", "val", "exists", "==", "!=", "===", "!==", "<", "<=", ">", ">=", "and", "or", "!",
    "!!", "in", "contains", "missing", "missing_some", "is_empty", "today", "now", "date_add",
    "days_between", "years_between", "hour_of", "weekday_of", "bin_of",
)
# fmt: on

#: Field type -> how the compiler treats its stored value.
FIELD_TYPES: Final[Mapping[str, Kind]] = {
    **dict.fromkeys(("text", "textarea", "email", "phone", "url", "select", "relation"), "text"),
    **dict.fromkeys(("date", "datetime", "time"), "text"),
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "multiselect": "array",
    "table": "array",
    "file": "object",
    "image": "object",
    # a member and a department are ids and names; an auto-number is its text
    **dict.fromkeys(("autonumber", "user", "department"), "text"),
    # stored as integer / long text / image (fields.STORED_AS)
    "rating": "number",
    "richtext": "text",
    "signature": "object",
}

#: Field types a typed projection holds as a column, and the column's SQL type there: the
#: scalar types whose compiled expression is one typed value, long text included (a typed
#: table holds it too, and a row of only projected fields reads as its whole document), and
#: a multiselect's array; tables and files stay in the document only.
PROJECTED_TYPES: Final[Mapping[str, Literal["text", "numeric", "boolean", "json"]]] = {
    **dict.fromkeys(
        ("text", "email", "phone", "url", "select", "relation", "date", "datetime", "time"),
        "text",
    ),
    # long text (and rich text, stored as it): a B-tree cannot index it (an entry holds at
    # most a third of a page), so an indexed one gets a hash index (LONG_TEXT_TYPES)
    "textarea": "text",
    # ids (a member, a department) and an auto-number's text
    **dict.fromkeys(("autonumber", "user", "department"), "text"),
    "number": "numeric",
    "integer": "numeric",
    "boolean": "boolean",
    # the stored array itself (PostgreSQL JSONB, SQLite JSON text): membership tests read it
    # from the narrow table, and a GIN index serves them
    "multiselect": "json",
}

#: Field types whose values may be too long for a B-tree entry (~2,700 bytes on PostgreSQL):
#: indexed by a hash of the value there (equality), not in order.
LONG_TEXT_TYPES: Final[frozenset[str]] = frozenset({"textarea"})

#: Most values a filter's list may hold (``{"in": [{"var": "status"}, [...]]}``); a list is
#: bound as one parameter, so this bounds the work of one filter, not the database's limits.
MAX_LIST_VALUES: Final = 10_000
#: Most fields one ``missing`` / ``missing_some`` may name (each becomes its own SQL test,
#: and SQLite refuses expressions more than 1000 deep).
MAX_FIELD_NAMES: Final = 100

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
_DATETIME_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
#: Operators that read the record; a sub-expression without them is a constant.
_DATA_OPERATORS = frozenset({"var", "missing", "missing_some", "val", "exists"})
_EQUALITY = frozenset({"==", "===", "!=", "!=="})
#: Operators giving a number from one date field: compared in filters, never conditions.
_NUMBER_OF_DATE = frozenset({"days_between", "years_between", "hour_of", "weekday_of"})
#: ... and every operator giving a number from one field.
_NUMBER_OF_FIELD = _NUMBER_OF_DATE | {"bin_of"}
#: Widths ``bin_of`` takes in a filter: 10**-15 to 10**15, at most 15 decimals, so the
#: value counted in the width's units stays within SQLite's 64-bit integers and doubles.
MAX_BIN_SCALE: Final = 10**15
_ORDERING = frozenset({"<", "<=", ">", ">="})
#: Operators whose argument count the compiler checks itself, with a message for filters.
_OWN_ARITY_MESSAGES = frozenset({"in", "contains", "is_empty", "missing_some", *_NUMBER_OF_FIELD})
_FLIPPED = {
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
    "==": "==",
    "===": "===",
    "!=": "!=",
    "!==": "!==",
}
#: Value classes whose answer the evaluator is asked for (see the module docstring).
_SPECIAL_VALUES: Final[Mapping[Kind, tuple[Any, ...]]] = {
    "text": ("",),
    "number": (0,),
    "boolean": (False,),
    "array": ([],),
    "object": ({},),
    "timestamp": (),
}
#: One ordinary (non-null, non-special) value per kind.
_ORDINARY_VALUE: Final[Mapping[Kind, Any]] = {
    "text": "x",
    "number": 7,
    "boolean": True,
    "array": ["x"],
    "object": {"id": "x"},
    "timestamp": "2024-01-01T00:00:00Z",
}
#: Values a field of a type can hold, used to check that a comparison of two fields treats
#: an empty side consistently. Keyed by field type, then by kind.
_SAMPLES_BY_TYPE: Final[Mapping[str, tuple[Any, ...]]] = {
    "date": ("1999-12-31", "2024-02-29"),
    "datetime": ("1999-12-31T23:59:59Z", "2024-02-29T00:00:00Z"),
    "time": ("00:00", "09:30", "23:59:59"),
}
_SAMPLES_BY_KIND: Final[Mapping[Kind, tuple[Any, ...]]] = {
    "text": ("", "a", "B", "5", "abc", "2024-01-01"),
    "number": (-1.5, 0, 1, 7),
    "boolean": (True, False),
    "array": ([], ["x"]),
    "object": ({}, {"id": "x"}),
    "timestamp": ("1999-12-31T23:59:59Z", "2024-02-29T00:00:00Z"),
}


class FilterError(LogicError):
    """A rule cannot be used as a filter; ``pointer`` locates the problem inside the rule."""

    kind = "Invalid Filter"

    def __init__(self, message: str, *, pointer: str = "") -> None:
        super().__init__(f"{message} (at {pointer})" if pointer else message)
        self.message = message
        self.pointer = pointer


@dataclass(frozen=True, eq=False)
class FilterTarget:
    """What a filter runs against: the records' ``data`` column and the form's fields.

    ``fields`` maps field key -> field type (see :data:`FIELD_TYPES`); ``columns`` maps the
    system column names (``id``, ``version``, ``created_at``, ...) to their columns.
    A ``var`` names a field first, then a system column.

    ``projected`` maps some fields to typed columns of a projection (see
    :data:`PROJECTED_TYPES`) holding the same value as ``data``: NUMERIC for numbers, BOOLEAN,
    text types (dates and datetimes in their stored ISO text) as ``COLLATE "C"`` TEXT, and a
    multiselect's array as JSONB (SQLite: the values ``json_extract`` gives, untyped).
    A projected field is read from its column instead of the document, with one assumption:
    the document never holds a JSON ``null`` for it (the platform stores an empty field as
    an absent key), so "absent" and "null" are both the column's SQL ``NULL``.
    """

    data: ColumnElement[Any]
    fields: Mapping[str, str]
    columns: Mapping[str, ColumnElement[Any]]
    dialect: Dialect
    projected: Mapping[str, ColumnElement[Any]] = dataclass_field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Field expressions
# --------------------------------------------------------------------------------------


def _check_key(key: object, pointer: str = "") -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise FilterError(
            f"{json.dumps(key)} is not a field key (filters read top-level fields only: "
            "lower-case letters, digits and '_')",
            pointer=pointer,
        )
    return key


def _kind_of_type(key: str, field_type: str, pointer: str = "") -> Kind:
    kind = FIELD_TYPES.get(field_type)
    if kind is None:
        raise FilterError(
            f"field '{key}' has type '{field_type}', which cannot be filtered or sorted",
            pointer=pointer,
        )
    return kind


def _text_at(target: FilterTarget, key: str) -> ColumnElement[Any]:
    """The field as SQL text (PostgreSQL ``data ->> 'key'``), NULL when absent or null."""
    if key in target.projected and PROJECTED_TYPES.get(target.fields.get(key, "")) == "text":
        return target.projected[key]
    if target.dialect == "postgresql":
        return target.data.op("->>", return_type=sa.Text())(sa.literal_column(f"'{key}'"))
    return sa.func.json_extract(target.data, sa.literal_column(f"'$.{key}'"), type_=sa.Text())


def local_time(
    stored: ColumnElement[Any],
    kind: Literal["date", "datetime", "column"],
    zone: str,
    dialect: Dialect,
) -> ColumnElement[Any]:
    """Wall-clock time in ``zone`` of a stored date or datetime text, or of a system
    timestamp column: PostgreSQL ``timestamp``; SQLite text ``YYYY-MM-DD HH:MM:SS`` (a date
    stays ``YYYY-MM-DD``: it has no time of day and no zone). SQLite has no zones, so the
    zone's UTC offsets become a tree of tests on the UTC text (see :mod:`.zones`)."""
    pg = dialect == "postgresql"
    if kind == "date":
        return sa.cast(stored, sa.DateTime()) if pg else stored
    utc_text: ColumnElement[Any]
    settled = settled_offset(zone)
    if kind == "column":
        if pg:
            return sa.func.timezone(zone, stored)
        utc_text = sa.func.strftime("%Y-%m-%dT%H:%M:%SZ", stored)
    else:
        if pg:
            exact = sa.func.timezone(zone, sa.cast(stored, sa.DateTime(timezone=True)))
            if settled is None:
                return exact
            # In the zone's last period local time is UTC + a constant: a timestamp cast
            # (it ignores the text's "Z") plus an interval, ~30 % cheaper than timezone().
            since, offset = settled
            shifted = sa.cast(stored, sa.DateTime()).op("+", return_type=sa.DateTime())(
                sa.literal_column(f"interval '{offset} seconds'")
            )
            if not since:
                return shifted
            recent = sa.collate(stored, "C") >= sa.literal_column(f"'{since}'")
            return sa.case((recent, shifted), else_=exact)
        utc_text = stored
    tree = _offset_tree(utc_text, offset_periods(zone))
    if settled is not None and settled[0]:  # the last period first: most records are there
        recent = utc_text >= sa.literal_column(f"'{settled[0]}'")
        tree = sa.case((recent, sa.literal_column(f"'{settled[1]:+d} seconds'")), else_=tree)
    return sa.func.datetime(utc_text, tree)


def _offset_tree(
    utc_text: ColumnElement[Any], periods: tuple[tuple[str, int], ...]
) -> ColumnElement[Any]:
    if len(periods) == 1:
        return sa.literal_column(f"'{periods[0][1]:+d} seconds'")
    middle = len(periods) // 2
    return sa.case(
        (
            utc_text < sa.literal_column(f"'{periods[middle][0]}'"),
            _offset_tree(utc_text, periods[:middle]),
        ),
        else_=_offset_tree(utc_text, periods[middle:]),
    )


def bin_number(
    value: ColumnElement[Any], width: float | int, dialect: Dialect
) -> ColumnElement[Any]:
    """The bin number of a number ``value`` for bins of ``width``, as ``bin_of`` computes it
    (:mod:`.bins`): ``floor(round(value * scale, 9) / whole)`` where the width is ``whole``
    units of ``1/scale`` (``0.25``: 25 of 1/100). PostgreSQL in NUMERIC, from the stored
    decimal text: exactly the evaluator's. SQLite in doubles, whose errors the 9 decimals
    absorb while ``value * scale`` is within about ±4.5e6 (and beyond, for values the
    doubles hold exactly enough: whole numbers, halves...); past that a value within a
    double's error of an edge may fall in the bin next to it. A 64-bit integer; NULL for a
    NULL value.
    Report cells (``bin_width``) and filters (``bin_of``) both use this one expression, so a
    cell and its drill-down put every value in the same bin on both databases."""
    scale, whole = width_scale(width)
    if dialect == "postgresql":
        if not isinstance(value.type, sa.Numeric) or isinstance(value.type, sa.Float):
            value = sa.cast(value, sa.Numeric())
        scaled = sa.func.round(value * sa.literal(Decimal(scale), sa.Numeric()), ROUNDING_PLACES)
        quotient = scaled / sa.literal(Decimal(whole), sa.Numeric())
        return sa.cast(sa.func.floor(quotient), sa.BigInteger())
    # floor(round(v * scale, 9)) as its whole part plus its rounded fraction's floor (-1, 0
    # or 1): SQLite's round() prints 16 significant digits, so only a fraction (below 1)
    # keeps its 9 decimals; then floor division by `whole`, exact in integers.
    product = value * scale
    whole_part = sa.cast(product, sa.Integer())  # toward zero
    fraction = sa.func.round(product - whole_part, ROUNDING_PLACES)
    carry = sa.case((fraction >= 1, 1), (fraction < 0, -1), else_=0)
    units = whole_part + carry
    return (units - (units % whole + whole) % whole) / whole


def bin_width_problem(width: Any) -> str | None:
    """Why ``bin_of`` in a filter cannot take ``width`` (None: it can): a positive number
    from 1e-15 to 1e15 with at most 15 decimals (:data:`MAX_BIN_SCALE`)."""
    try:
        scale, whole = width_scale(width)
    except InvalidArguments as error:
        return str(error)
    if scale > MAX_BIN_SCALE or whole > MAX_BIN_SCALE * scale:
        return (
            "'bin_of' in a filter takes a width from 1e-15 to 1e15 with at most 15 decimals, "
            f"not {_describe(width)}"
        )
    return None


def clock_part(
    local: ColumnElement[Any], part: Literal["hour", "weekday"], dialect: Dialect
) -> ColumnElement[Any]:
    """The hour (0-23) or ISO weekday (1 = Monday) of a :func:`local_time` value."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("isodow" if part == "weekday" else "hour", local), sa.Integer())
    if part == "weekday":
        return (sa.cast(sa.func.strftime("%w", local), sa.Integer()) + 6) % 7 + 1
    # A date's text has no time: substr gives '', which casts to 0, its hour.
    return sa.cast(sa.func.substr(local, 12, 2), sa.Integer())


def _json_at(target: FilterTarget, key: str) -> ColumnElement[Any]:
    """The field as JSON (PostgreSQL ``data -> 'key'``; SQLite gives SQL values/JSON text),
    or its projected column, which holds the same."""
    if key in target.projected:
        return target.projected[key]
    if target.dialect == "postgresql":
        return target.data.op("->", return_type=JSONB())(sa.literal_column(f"'{key}'"))
    return sa.func.json_extract(target.data, sa.literal_column(f"'$.{key}'"))


def _data_field_value(target: FilterTarget, key: str, field_type: str) -> ColumnElement[Any]:
    kind = _kind_of_type(key, field_type)
    if key in target.projected:
        return target.projected[key]
    if target.dialect == "postgresql":
        if kind == "text":
            return sa.collate(_text_at(target, key), "C")
        if kind == "number":
            return sa.cast(_text_at(target, key), sa.Numeric())
        if kind == "boolean":
            return sa.cast(_text_at(target, key), sa.Boolean())
        return _json_at(target, key)
    if kind == "text":
        return _text_at(target, key)
    return _json_at(target, key)


def field_value(target: FilterTarget, key: str) -> ColumnElement[Any]:
    """The typed scalar expression of a field (or system column) ``key``.

    PostgreSQL: text types ``(data ->> 'key') COLLATE "C"``, number/integer
    ``CAST(data ->> 'key' AS NUMERIC)``, boolean ``CAST(data ->> 'key' AS BOOLEAN)``,
    multiselect/table/file/image ``data -> 'key'`` (JSONB). SQLite:
    ``json_extract(data, '$.key')``. Filters, sorting and indexes must all use this.
    """
    _check_key(key)
    if key in target.fields:
        return _data_field_value(target, key, target.fields[key])
    if key in target.columns:
        return target.columns[key]
    raise FilterError(f"unknown field '{key}'")


def index_expression_sql(key: str, field_type: str, *, dialect: Dialect = "postgresql") -> str:
    """The index expression matching :func:`field_value` for ``key`` of ``field_type``.

    Use it wrapped in parentheses: ``CREATE INDEX ... ON records ((<expression>))`` (a btree
    for scalar types; for multiselect a GIN index ``USING gin ((data -> 'key'))`` serves
    membership tests). The column must be named ``data``.
    """
    _check_key(key)
    data_type: sa.types.TypeEngine[Any] = JSONB() if dialect == "postgresql" else sa.JSON()
    target = FilterTarget(sa.column("data", data_type), {key: field_type}, {}, dialect)
    expression = field_value(target, key)
    compiled = expression.compile(
        dialect=_sql_dialect(dialect), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


def _sql_dialect(dialect: Dialect) -> sa.engine.Dialect:
    if dialect == "postgresql":
        return PGDialect()  # type: ignore[no-untyped-call]
    return SQLiteDialect()


# --------------------------------------------------------------------------------------
# Operands
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Constant:
    """A value known at compile time (a literal or a folded sub-expression)."""

    value: Any


@dataclass(frozen=True)
class _Field:
    """A ``var`` naming a data field or a system column."""

    key: str
    kind: Kind
    field_type: str  # the form field type, or "column"
    value: ColumnElement[Any]
    has_default: bool

    @property
    def is_column(self) -> bool:
        return self.field_type == "column"


@dataclass(frozen=True)
class _Derived:
    """A number computed from one field: from a date (``days_between``/``years_between``,
    ``hour_of``/``weekday_of``) or a number (``bin_of``); ``what`` names it in messages."""

    source: _Field
    value: ColumnElement[Any]
    what: str = "a number of days or years"


_Operand: TypeAlias = _Constant | _Field | _Derived


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _operation(node: Any) -> tuple[str, Any] | None:
    """``(operator, arguments)`` when ``node`` is a JsonLogic operation, else ``None``."""
    if isinstance(node, dict) and len(node) == 1:
        ((op, args),) = node.items()
        if isinstance(op, str):
            return op, args
    return None


def _arguments(args: Any, op_pointer: str) -> list[tuple[Any, str]]:
    """An operation's arguments with their pointers (``{"!": x}`` is ``{"!": [x]}``)."""
    if isinstance(args, list):
        return [(arg, f"{op_pointer}/{i}") for i, arg in enumerate(args)]
    return [(args, op_pointer)]


def _reads_data(node: Any) -> bool:
    if isinstance(node, list):
        return any(_reads_data(item) for item in node if isinstance(item, dict | list))
    operation = _operation(node)
    if operation is None:
        return False
    op, args = operation
    return op in _DATA_OPERATORS or _reads_data(args)


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _normalise_datetime(text: str, pointer: str = "") -> str | None:
    """``text`` as a UTC ``YYYY-MM-DDTHH:MM:SSZ`` when it is a datetime, else ``None``; a
    :class:`FilterError` when that instant falls outside years 1-9999 in UTC."""
    if not _DATETIME_PREFIX.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        raise FilterError(
            f"{_describe(text)} is outside years 1-9999 once converted to UTC", pointer=pointer
        ) from None


def _temporal_literal(field: _Field, value: str, pointer: str) -> str:
    """A text literal compared with a date, datetime or time field, checked to be one of
    those (datetimes normalised to UTC): text order is time order only between such texts,
    so ``"abc"`` or ``"9:30"`` would quietly select nonsense. ``""`` (no value) is kept."""
    if value == "" or field.field_type not in ("date", "datetime", "time"):
        return value
    if field.field_type == "time":
        if _TIME.fullmatch(value):
            return value
        raise FilterError(
            f"'{field.key}' is a time; compare it with a time (HH:MM or HH:MM:SS), "
            f"not {_describe(value)}",
            pointer=pointer,
        )
    if _DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    normalised = _normalise_datetime(value, pointer)
    if normalised is not None:
        return normalised
    raise FilterError(
        f"'{field.key}' is a {field.field_type}; compare it with a date (YYYY-MM-DD) or a "
        f"datetime (YYYY-MM-DDTHH:MM:SSZ), not {_describe(value)}",
        pointer=pointer,
    )


def _unsupported(op: str, pointer: str, context: str = "in a filter") -> FilterError:
    if op == "bin_of" and context == "in a filter":
        return FilterError(
            "'bin_of' gives a number, not a condition; compare it or look it up, e.g. "
            '{"in": [{"bin_of": [{"var": "..."}, 0.5]}, [1, 4, 9]]}',
            pointer=pointer,
        )
    if op in _NUMBER_OF_DATE and context == "in a filter":
        return FilterError(
            f"'{op}' gives a number, not a condition; compare it, e.g. "
            f'{{">": [{{"{op}": [{{"var": "..."}}, {{"today": []}}]}}, 3]}}',
            pointer=pointer,
        )
    if op in ("date_add", "today", "now"):
        return FilterError(
            f"'{op}' can only work on constants in a filter; move the arithmetic to the other "
            'side, e.g. {">=": [{"var": "visit_date"}, '
            '{"date_add": [{"today": []}, -30, "day"]}]}',
            pointer=pointer,
        )
    return FilterError(
        f"operator '{op}' cannot be used {context}; supported: " + ", ".join(SUPPORTED_OPERATORS),
        pointer=pointer,
    )


# --------------------------------------------------------------------------------------
# The compiler
# --------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, target: FilterTarget, now: datetime) -> None:
        self.target = target
        self.now = now
        self.pg = target.dialect == "postgresql"
        if target.dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported dialect {target.dialect!r}")

    # -- asking the evaluator --------------------------------------------------------

    def evaluate(self, node: Any, data: Mapping[str, Any], pointer: str) -> Any:
        try:
            return evaluate(node, dict(data), now=self.now)
        except LogicError as exc:
            raise FilterError(
                f"this expression cannot be evaluated: {exc}", pointer=pointer
            ) from exc

    def truthy(self, value: Any) -> bool:
        return bool(evaluate({"!!": [{"var": "v"}]}, {"v": value}, now=self.now))

    def probe(self, node: Any, data: Mapping[str, Any], pointer: str) -> bool:
        """Is ``node`` truthy for a record holding ``data``?"""
        try:
            return self.truthy(evaluate(node, dict(data), now=self.now))
        except LogicError as exc:
            shown = _describe(dict(data)) if data else "a record without these fields"
            raise FilterError(
                f"this condition has no answer for {shown} ({exc}); it cannot be a filter",
                pointer=pointer,
            ) from exc

    def fold(self, node: Any, pointer: str) -> Any:
        if isinstance(node, list) and not any(isinstance(item, dict | list) for item in node):
            return node  # a list of plain values is itself (and may be long)
        return self.evaluate(node, {}, pointer)

    # -- SQL pieces per field ----------------------------------------------------------

    def is_null(self, field: _Field) -> Predicate:
        if field.is_column:
            return field.value.is_(None)
        if self.pg and field.kind in ("array", "object") and field.key not in self.target.projected:
            return _text_at(self.target, field.key).is_(None)
        return field.value.is_(None)

    def is_absent(self, field: _Field) -> Predicate:
        if field.is_column or field.key in self.target.projected:
            return field.value.is_(None)
        if self.pg:
            return _json_at(self.target, field.key).is_(None)
        return sa.func.json_type(self.target.data, sa.literal_column(f"'$.{field.key}'")).is_(None)

    def is_json_null(self, field: _Field) -> Predicate:
        if field.is_column or field.key in self.target.projected:
            return sa.false()
        if self.pg:
            return sa.func.jsonb_typeof(_json_at(self.target, field.key)) == sa.literal("null")
        json_type = sa.func.json_type(self.target.data, sa.literal_column(f"'$.{field.key}'"))
        return json_type == sa.literal("null")

    def is_special(self, field: _Field, value: Any) -> Predicate:
        """SQL for "the field holds ``value``", one of the kind's special values."""
        if field.kind in ("array", "object"):
            if self.pg:
                return _json_at(self.target, field.key) == sa.cast(
                    sa.literal(json.dumps(value)), JSONB()
                )
            path: ColumnElement[Any] = sa.literal_column(f"'$.{field.key}'")
            if field.kind == "array" and field.key in self.target.projected:
                return sa.func.json_array_length(self.target.projected[field.key]) == 0
            if field.kind == "array":
                return sa.func.json_array_length(self.target.data, path) == 0
            return sa.func.json_extract(self.target.data, path) == sa.literal("{}")
        return field.value == self.bind(field, value)

    def with_nulls(self, node: Any, pointer: str, field: _Field, typed: Predicate) -> Predicate:
        """``typed`` (the answer for non-null values) plus the evaluator's null answers."""
        if field.is_column:
            if self.probe(node, {field.key: None}, pointer):
                return _or(typed, self.is_null(field))
            return typed
        when_absent = self.probe(node, {}, pointer)
        when_null = self.probe(node, {field.key: None}, pointer)
        if when_absent and when_null:
            return _or(typed, self.is_null(field))
        if when_absent:
            return _or(typed, self.is_absent(field))
        if when_null:
            return _or(typed, self.is_json_null(field))
        return typed

    def by_value_class(self, node: Any, pointer: str, field: _Field) -> Predicate:
        """A condition whose answer depends only on the field's value class."""
        special_true: list[Predicate] = []
        special_false: list[Predicate] = []
        for value in _SPECIAL_VALUES[field.kind]:
            holds = self.is_special(field, value)
            if self.probe(node, {field.key: value}, pointer):
                special_true.append(holds)
            else:
                special_false.append(holds)
        if self.probe(node, {field.key: _ORDINARY_VALUE[field.kind]}, pointer):
            present = sa.not_(self.is_null(field))
            typed = _and(present, *(sa.not_(holds) for holds in special_false))
        else:
            typed = _or(*special_true)
        return self.with_nulls(node, pointer, field, typed)

    def bind(self, field: _Field, value: Any) -> ColumnElement[Any]:
        """A bound parameter for ``value`` typed to compare with ``field``."""
        if field.kind == "number":
            if self.pg:
                return sa.literal(
                    Decimal(repr(value)) if isinstance(value, float) else value, sa.Numeric()
                )
            return sa.literal(value, sa.Float() if isinstance(value, float) else sa.Integer())
        if field.kind == "boolean":
            return sa.literal(bool(value), sa.Boolean())
        if field.kind == "timestamp":
            return sa.literal(value, field.value.type)
        return sa.literal(value, sa.Text())

    # -- boolean context ---------------------------------------------------------------

    def predicate(self, node: Any, pointer: str) -> Predicate:
        """SQL that is true exactly where ``node`` is truthy (NULL counts as false)."""
        if not _reads_data(node):
            _check_conditions(node, pointer)
            return sa.true() if self.truthy(self.fold(node, pointer)) else sa.false()
        if isinstance(node, list):
            raise FilterError("a list cannot be a condition", pointer=pointer)
        operation = _operation(node)
        assert operation is not None  # _reads_data is only true for lists and operations
        op, args = operation
        op_pointer = f"{pointer}/{_escape_pointer(op)}"
        if op in ("and", "or"):
            parts = [self.predicate(arg, p) for arg, p in _arguments(args, op_pointer)]
            return _and(*parts) if op == "and" else _or(*parts)
        if op in ("!", "!!"):
            arguments = _arguments(args, op_pointer)
            if not arguments:
                raise FilterError(f"'{op}' needs one argument", pointer=op_pointer)
            inner = self.predicate(*arguments[0])
            return inner if op == "!!" else inner.is_not(sa.true())
        if op in ("var", "val", "exists"):
            field = (
                self.val_field(args, op_pointer) if op != "var" else self.field(args, op_pointer)
            )
            return self.by_value_class(node, pointer, field)
        if op in _EQUALITY or op in _ORDERING:
            return self.comparison(node, op, args, pointer, op_pointer)
        if op in ("in", "contains"):
            return self.membership(node, op, args, pointer, op_pointer)
        if op == "is_empty":
            arguments = _arguments(args, op_pointer)
            if len(arguments) != 1:
                raise FilterError("'is_empty' takes one argument", pointer=op_pointer)
            operand = self.operand(*arguments[0])
            if not isinstance(operand, _Field):
                raise FilterError(
                    "'is_empty' in a filter must be applied to a field", pointer=arguments[0][1]
                )
            return self.by_value_class(node, pointer, operand)
        if op == "missing":
            return self.missing(args, op_pointer)
        if op == "missing_some":
            return self.missing_some(args, pointer, op_pointer)
        raise _unsupported(op, op_pointer)

    # -- value context -----------------------------------------------------------------

    def operand(self, node: Any, pointer: str) -> _Operand:
        if not _reads_data(node):
            return _Constant(self.fold(node, pointer))
        operation = _operation(node)
        if operation is None:
            raise FilterError(
                "a list or object containing fields cannot be used in a filter", pointer=pointer
            )
        op, args = operation
        op_pointer = f"{pointer}/{_escape_pointer(op)}"
        if op == "var":
            return self.field(args, op_pointer)
        if op == "val":
            return self.val_field(args, op_pointer)
        if op in ("days_between", "years_between"):
            return self.derived(op, args, op_pointer)
        if op in ("hour_of", "weekday_of"):
            return self.clock(op, args, op_pointer)
        if op == "bin_of":
            return self.binned(args, op_pointer)
        raise _unsupported(op, op_pointer, "as a value in a filter")

    def val_field(self, args: Any, op_pointer: str) -> _Field:
        """``{"val": "key"}`` / ``{"exists": "key"}`` (newer JsonLogic): one top-level key."""
        path = args[0] if isinstance(args, list) and len(args) == 1 else args
        if not isinstance(path, str):
            raise FilterError(
                "in a filter, 'val' and 'exists' take one top-level field key", pointer=op_pointer
            )
        return self.field([path], op_pointer)

    def field(self, args: Any, op_pointer: str) -> _Field:
        arguments = _arguments(args, op_pointer)
        if not arguments:
            raise FilterError("'var' needs a field key", pointer=op_pointer)
        path, path_pointer = arguments[0]
        if _operation(path) is not None:
            if _reads_data(path):
                raise FilterError(
                    "a field key computed from data cannot be used in a filter",
                    pointer=path_pointer,
                )
            path = self.fold(path, path_pointer)
        for default, default_pointer in arguments[1:2]:
            if _reads_data(default):
                raise FilterError(
                    "a 'var' default in a filter must be a constant", pointer=default_pointer
                )
        key = _check_key(path, path_pointer)
        has_default = len(arguments) > 1
        if key in self.target.fields:
            field_type = self.target.fields[key]
            kind = _kind_of_type(key, field_type, op_pointer)
            value = _data_field_value(self.target, key, field_type)
            return _Field(key, kind, field_type, value, has_default)
        if key in self.target.columns:
            column = self.target.columns[key]
            return _Field(key, _column_kind(key, column, op_pointer), "column", column, has_default)
        raise FilterError(f"unknown field '{key}'", pointer=path_pointer)

    def derived(self, op: str, args: Any, op_pointer: str) -> _Operand:
        arguments = _arguments(args, op_pointer)
        if len(arguments) != 2:
            raise FilterError(f"'{op}' takes two arguments", pointer=op_pointer)
        operands = [self.operand(arg, p) for arg, p in arguments]
        fields = [o for o in operands if isinstance(o, _Field)]
        constants = [o for o in operands if isinstance(o, _Constant)]
        if len(fields) != 1 or len(constants) != 1:
            raise FilterError(
                f"'{op}' in a filter needs one date field and one constant date",
                pointer=op_pointer,
            )
        source, constant = fields[0], constants[0]
        if source.field_type not in ("date", "datetime") and source.kind != "timestamp":
            raise FilterError(
                f"'{op}' needs a date or datetime field; '{source.key}' is a "
                f"{source.field_type} field",
                pointer=op_pointer,
            )
        field_first = operands[0] is source
        reference = self.constant_date(op, constant.value, op_pointer)
        if reference is None:  # the evaluator gives null for every record
            return _Constant(None)
        field_date = self.date_text(source)
        value: ColumnElement[Any]
        if op == "days_between":
            # days_between(a, b) is b - a: the field is `a` when it comes first.
            if self.pg:
                field_day: ColumnElement[Any] = sa.cast(field_date, sa.Date())
                ref_day: ColumnElement[Any] = sa.literal(reference, sa.Date())
            else:
                field_day = sa.func.julianday(field_date)
                ref_day = sa.func.julianday(sa.literal(reference.isoformat(), sa.Text()))
            start, end = (field_day, ref_day) if field_first else (ref_day, field_day)
            value = end.op("-", return_type=sa.Integer())(start)
            if not self.pg:  # julianday differences of calendar dates are whole, as REALs
                value = sa.cast(value, sa.Integer())
        else:
            # Whole years from `start` to `end`, as an age is counted; negative (truncated
            # toward zero) when `end` is earlier, like the evaluator.
            year = sa.cast(sa.func.substr(field_date, 1, 4), sa.Integer())
            month_day = sa.func.substr(field_date, 6, 5)
            ref_text = sa.literal(reference.isoformat(), sa.Text())
            ref_year = sa.literal(reference.year)
            ref_month_day = sa.literal(reference.isoformat()[5:], sa.Text())
            if field_first:  # from the field's date to the reference date
                forward = field_date <= ref_text
                ahead = ref_year - year - sa.case((ref_month_day < month_day, 1), else_=0)
                behind = ref_year - year + sa.case((month_day < ref_month_day, 1), else_=0)
            else:  # from the reference date to the field's date
                forward = ref_text <= field_date
                ahead = year - ref_year - sa.case((month_day < ref_month_day, 1), else_=0)
                behind = year - ref_year + sa.case((ref_month_day < month_day, 1), else_=0)
            value = sa.case((forward, ahead), else_=behind)
        return _Derived(source, value)

    def clock(self, op: str, args: Any, op_pointer: str) -> _Operand:
        """``{"hour_of": [field, zone]}`` / ``weekday_of``: the wall clock of a date,
        datetime or system timestamp in a constant zone, as an integer."""
        arguments = _arguments(args, op_pointer)
        if not 1 <= len(arguments) <= 2:
            raise FilterError(
                f"'{op}' takes a date or datetime field and a time zone", pointer=op_pointer
            )
        source = self.operand(*arguments[0])
        if not isinstance(source, _Field):
            raise FilterError(
                f"'{op}' in a filter needs a date or datetime field", pointer=arguments[0][1]
            )
        zone = "UTC"
        if len(arguments) == 2:
            zone_node, zone_pointer = arguments[1]
            if _reads_data(zone_node):
                raise FilterError(
                    f"the time zone of '{op}' must be a constant", pointer=zone_pointer
                )
            zone = self.fold(zone_node, zone_pointer)
            if zone is None:  # the evaluator gives null for every record
                return _Constant(None)
            try:
                dates.time_zone(zone, op)
            except InvalidArguments as error:
                raise FilterError(str(error), pointer=zone_pointer) from error
        stored: ColumnElement[Any]
        if source.field_type in ("date", "datetime"):
            kind: Literal["date", "datetime", "column"] = source.field_type  # type: ignore[assignment]
            stored = _text_at(self.target, source.key)
        elif source.kind == "timestamp":
            kind, stored = "column", source.value
        else:
            raise FilterError(
                f"'{op}' needs a date or datetime field; '{source.key}' is a "
                f"{source.field_type} field",
                pointer=op_pointer,
            )
        local = local_time(stored, kind, zone, self.target.dialect)
        part: Literal["hour", "weekday"] = "hour" if op == "hour_of" else "weekday"
        what = "an hour (0-23)" if part == "hour" else "a weekday (1 = Monday ... 7 = Sunday)"
        return _Derived(source, clock_part(local, part, self.target.dialect), what)

    def binned(self, args: Any, op_pointer: str) -> _Operand:
        """``{"bin_of": [field, width]}``: the bin number of a number field for a constant
        width (:func:`bin_number`)."""
        arguments = _arguments(args, op_pointer)
        if len(arguments) != 2:
            raise FilterError(
                "'bin_of' takes a number field and a constant width", pointer=op_pointer
            )
        (value_node, value_pointer), (width_node, width_pointer) = arguments
        if _reads_data(width_node):
            raise FilterError("the width of 'bin_of' must be a constant", pointer=width_pointer)
        width = self.fold(width_node, width_pointer)
        problem = bin_width_problem(width)
        if problem is not None:
            raise FilterError(problem, pointer=width_pointer)
        source = self.operand(value_node, value_pointer)
        if not isinstance(source, _Field):
            raise FilterError("'bin_of' in a filter needs a number field", pointer=value_pointer)
        if source.kind != "number":
            raise FilterError(
                f"'bin_of' needs a number field; '{source.key}' is a {_type_label(source)} field",
                pointer=op_pointer,
            )
        value = bin_number(source.value, width, self.target.dialect)
        return _Derived(source, value, "a bin number")

    def constant_date(self, op: str, value: Any, pointer: str) -> date | None:
        """The calendar date the evaluator sees in ``value``, or None when it gives null.

        The evaluator itself answers: days from a fixed date to ``value``.
        """
        epoch = date(2000, 1, 1)
        days = self.evaluate({"days_between": [epoch.isoformat(), value]}, {}, pointer)
        if days is None:
            return None
        if not _is_number(days):
            raise FilterError(f"'{op}' needs a date, not {_describe(value)}", pointer=pointer)
        return epoch + timedelta(days=int(days))

    def date_text(self, field: _Field) -> ColumnElement[Any]:
        """The field's calendar date as ``YYYY-MM-DD`` text (datetimes: their UTC date)."""
        if field.kind == "timestamp":
            if self.pg:
                text = sa.func.to_char(sa.func.timezone("UTC", field.value), "YYYY-MM-DD")
                return sa.collate(text, "C")
            return sa.func.substr(field.value, 1, 10)
        text = sa.func.substr(_text_at(self.target, field.key), 1, 10)
        return sa.collate(text, "C") if self.pg else text

    def timestamp_text(self, field: _Field) -> ColumnElement[Any]:
        """A system datetime column as UTC ``YYYY-MM-DDTHH:MM:SSZ`` text."""
        if self.pg:
            return sa.collate(
                sa.func.to_char(sa.func.timezone("UTC", field.value), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                "C",
            )
        return sa.func.strftime("%Y-%m-%dT%H:%M:%SZ", field.value)

    # -- comparisons -------------------------------------------------------------------

    def comparison(self, node: Any, op: str, args: Any, pointer: str, op_pointer: str) -> Predicate:
        arguments = _arguments(args, op_pointer)
        if len(arguments) < 2 or not isinstance(args, list):
            raise FilterError(f"'{op}' needs a list of at least two arguments", pointer=op_pointer)
        # Chained like the evaluator: {"<": [a, b, c]} is a < b and b < c ("between").
        pairs = [(i, i + 1) for i in range(len(arguments) - 1)]
        operands = [self.operand(arg, p) for arg, p in arguments]
        sources = {_source(o).key for o in operands if not isinstance(o, _Constant)}
        if len(sources) == 1:
            source = next(_source(o) for o in operands if not isinstance(o, _Constant))
            if (
                len(arguments) == 2
                and op in _EQUALITY
                and any(isinstance(o, _Constant) and o.value is None for o in operands)
                and all(isinstance(o, _Field | _Constant) for o in operands)
            ):
                return self.by_value_class(node, pointer, source)
            typed = _and(
                *(
                    self.compare(op, operands[i], operands[j], arguments[i][1], arguments[j][1])
                    for i, j in pairs
                ),
            )
            return self.with_nulls(node, pointer, source, typed)
        if len(operands) == 2 and len(sources) == 2:
            left, right = operands
            if isinstance(left, _Field) and isinstance(right, _Field):
                return self.compare_fields(node, op, left, right, pointer, op_pointer)
        raise FilterError(
            f"'{op}' in a filter compares one field with constants, or two fields",
            pointer=op_pointer,
        )

    def compare(
        self, op: str, left: _Operand, right: _Operand, left_pointer: str, right_pointer: str
    ) -> Predicate:
        """``left op right`` for non-null field values; one side is a constant."""
        if isinstance(left, _Constant) and isinstance(right, _Constant):  # inside a chain
            answer = self.evaluate({op: [left.value, right.value]}, {}, left_pointer)
            return sa.true() if self.truthy(answer) else sa.false()
        if isinstance(left, _Constant):
            op, left, right = _FLIPPED[op], right, left
            left_pointer, right_pointer = right_pointer, left_pointer
        assert not isinstance(left, _Constant)
        if not isinstance(right, _Constant):
            raise FilterError(
                f"'{op}' between a field and itself is not supported", pointer=right_pointer
            )
        value = right.value
        family = op.rstrip("=") if op in _ORDERING else ("==" if op in ("==", "===") else "!=")
        if isinstance(left, _Derived):
            if not _is_number(value):
                raise FilterError(
                    f"this compares {left.what} with {_describe(value)}; use a number",
                    pointer=right_pointer,
                )
            return _apply(op, left.value, sa.literal(value))
        field = left
        if field.kind == "timestamp":
            return self.compare_timestamp(op, field, value, right_pointer)
        expected = {"text": "a text", "number": "a number", "boolean": "true or false"}
        if field.kind not in expected:
            raise FilterError(
                f"'{field.key}' is a {field.field_type} field and cannot be compared with "
                f"'{op}'; use 'in', 'contains', 'is_empty' or 'missing'",
                pointer=left_pointer,
            )
        if not _matches_kind(field.kind, value):
            raise FilterError(
                f"'{field.key}' is a {_type_label(field)} field; compare it with "
                f"{expected[field.kind]}, not {_describe(value)}",
                pointer=right_pointer,
            )
        if field.kind == "text":
            value = _temporal_literal(field, value, right_pointer)
        expression = field.value
        if field.is_column and field.kind == "text" and family not in ("==", "!=") and self.pg:
            expression = sa.collate(expression, "C")
        return _apply(op, expression, self.bind(field, value))

    def compare_timestamp(self, op: str, field: _Field, value: Any, pointer: str) -> Predicate:
        """A system datetime column against a date/datetime literal, as its UTC text would
        compare, written as ranges over the column so its index serves."""
        bounds = _timestamp_bounds(value, pointer)
        if bounds is None:
            raise FilterError(
                f"'{field.key}' is a date and time; compare it with a date (YYYY-MM-DD) or "
                f"a datetime (YYYY-MM-DDTHH:MM:SSZ), not {_describe(value)}",
                pointer=pointer,
            )
        low, high = (self.bind(field, bound) for bound in bounds)
        column = field.value
        if op == "<":
            return column < low
        if op == ">=":
            return column >= low
        if op == "<=":
            return column < high
        if op == ">":
            return column >= high
        if op in ("==", "==="):
            return sa.and_(column >= low, column < high)
        return sa.or_(column < low, column >= high)

    def compare_fields(
        self, node: Any, op: str, left: _Field, right: _Field, pointer: str, op_pointer: str
    ) -> Predicate:
        """Two fields: the evaluator must treat an empty side like one fixed value (then
        SQL uses COALESCE) or give one fixed answer (then SQL adds that case)."""
        if left.has_default or right.has_default:
            raise FilterError(
                "comparing two fields does not support 'var' defaults", pointer=op_pointer
            )
        sides = [self.comparable_text(f) if f.kind == "timestamp" else f for f in (left, right)]
        kinds = {s.kind for s in sides}
        if len(kinds) != 1 or sides[0].kind not in ("text", "number", "boolean"):
            raise FilterError(
                f"'{left.key}' ({_type_label(left)}) and '{right.key}' ({_type_label(right)}) "
                "cannot be compared with each other",
                pointer=op_pointer,
            )
        kind = sides[0].kind
        samples_left = _samples(left)
        samples_right = _samples(right)

        def answer(a: Any, b: Any, absent: bool = False) -> bool:
            data = {k: v for k, v in ((left.key, a), (right.key, b)) if not (absent and v is None)}
            return self.probe(node, data, pointer)

        def same(candidate: Any) -> bool:
            for absent in (False, True):
                if any(answer(None, b, absent) != answer(candidate, b) for b in samples_right):
                    return False
                if any(answer(a, None, absent) != answer(a, candidate) for a in samples_left):
                    return False
                if answer(None, None, absent) != answer(candidate, candidate):
                    return False
            return True

        typed_left, typed_right = sides[0].value, sides[1].value
        for candidate in _SPECIAL_VALUES[kind]:
            if same(candidate):
                filler_left = self.bind(sides[0], candidate)
                filler_right = self.bind(sides[1], candidate)
                return _apply(
                    op,
                    sa.func.coalesce(typed_left, filler_left),
                    sa.func.coalesce(typed_right, filler_right),
                )

        def fixed(answers: list[bool]) -> bool | None:
            return answers[0] if len(set(answers)) == 1 else None

        left_empty = fixed(
            [answer(None, b, absent) for b in samples_right for absent in (False, True)]
        )
        right_empty = fixed(
            [answer(a, None, absent) for a in samples_left for absent in (False, True)]
        )
        both_empty = fixed([answer(None, None, absent) for absent in (False, True)])
        if left_empty is None or right_empty is None or both_empty is None:
            raise FilterError(
                f"comparing '{left.key}' and '{right.key}' with '{op}' is not supported: "
                "its answer for an empty field depends on the other field's value",
                pointer=op_pointer,
            )
        left_null, right_null = self.is_null(left), self.is_null(right)
        parts: list[Predicate] = [_apply(op, typed_left, typed_right)]
        if left_empty:
            parts.append(sa.and_(left_null, sa.not_(right_null)))
        if right_empty:
            parts.append(sa.and_(sa.not_(left_null), right_null))
        if both_empty:
            parts.append(sa.and_(left_null, right_null))
        return _or(*parts)

    def comparable_text(self, field: _Field) -> _Field:
        return _Field(field.key, "text", "datetime", self.timestamp_text(field), False)

    # -- in / contains -----------------------------------------------------------------

    def membership(self, node: Any, op: str, args: Any, pointer: str, op_pointer: str) -> Predicate:
        arguments = _arguments(args, op_pointer)
        if len(arguments) != 2:
            raise FilterError(f"'{op}' takes two arguments", pointer=op_pointer)
        if op == "contains":
            arguments.reverse()
        (needle_node, needle_pointer), (haystack_node, haystack_pointer) = arguments
        needle = self.operand(needle_node, needle_pointer)
        haystack = self.operand(haystack_node, haystack_pointer)
        if isinstance(needle, _Constant) and isinstance(haystack, _Field):
            typed = self.contains_constant(haystack, needle.value, needle_pointer)
            return self.with_nulls(node, pointer, haystack, typed)
        if isinstance(needle, _Field) and isinstance(haystack, _Constant):
            typed = self.within_constant(needle, haystack.value, haystack_pointer)
            return self.with_nulls(node, pointer, needle, typed)
        if isinstance(needle, _Derived) and isinstance(haystack, _Constant):
            typed = self.derived_within(needle, haystack.value, haystack_pointer)
            return self.with_nulls(node, pointer, needle.source, typed)
        raise FilterError(
            f"'{op}' in a filter tests a field against constants: a value in a multiselect "
            "or text field, or a field in a list of values",
            pointer=op_pointer,
        )

    def derived_within(self, derived: _Derived, values: Any, pointer: str) -> Predicate:
        """A number computed from a field (``days_between``, ``weekday_of``, ``bin_of``...) in a
        constant list of numbers, bound as one parameter as :meth:`one_of` binds a list."""
        if not isinstance(values, list):
            raise FilterError(
                f"expected a list of numbers, not {_describe(values)}", pointer=pointer
            )
        if len(values) > MAX_LIST_VALUES:
            raise FilterError(
                f"the list has {len(values)} values; at most {MAX_LIST_VALUES} are allowed",
                pointer=pointer,
            )
        for index, item in enumerate(values):
            if item is not None and not _is_number(item):
                raise FilterError(
                    f"this looks {derived.what} up in a list; use numbers, not {_describe(item)}",
                    pointer=f"{pointer}/{index}",
                )
        numbers = [item for item in values if item is not None]
        if not numbers:
            return sa.false()
        if self.pg:
            exact = [Decimal(repr(v)) if isinstance(v, float) else v for v in numbers]
            return derived.value == sa.any_(sa.literal(exact, ARRAY(sa.Numeric())))
        listed = sa.func.json_each(sa.literal(json.dumps(numbers), sa.Text())).table_valued("value")
        return derived.value.in_(sa.select(listed.c.value))

    def contains_constant(self, field: _Field, value: Any, pointer: str) -> Predicate:
        """``value`` in a multiselect (membership) or a text field (substring)."""
        if field.field_type == "multiselect":
            if not (isinstance(value, str) or _is_number(value)):
                raise FilterError(
                    f"a multiselect holds option values; {_describe(value)} cannot be one",
                    pointer=pointer,
                )
            if self.pg:
                wanted = sa.cast(sa.literal(json.dumps([value])), JSONB())
                return _json_at(self.target, field.key).op("@>", return_type=sa.Boolean())(wanted)
            items = (
                sa.func.json_each(self.target.projected[field.key])
                if field.key in self.target.projected
                else sa.func.json_each(self.target.data, sa.literal_column(f"'$.{field.key}'"))
            ).table_valued("value")
            match = (
                sa.select(sa.literal(1))
                .select_from(items)
                .where(items.c.value == sa.literal(value))
            )
            return sa.exists(match)
        if field.kind == "text" and not field.is_column:
            if not isinstance(value, str):
                raise FilterError(
                    f"'{field.key}' is text; look for text in it, not {_describe(value)}",
                    pointer=pointer,
                )
            if self.pg:  # LIKE (not strpos) so a trigram index can serve it
                return field.value.contains(value, autoescape=True)
            return sa.func.instr(field.value, sa.literal(value, sa.Text())) > 0
        raise FilterError(
            f"'{field.key}' is a {_type_label(field)} field; 'in'/'contains' needs a "
            "multiselect or text field",
            pointer=pointer,
        )

    def within_constant(self, field: _Field, values: Any, pointer: str) -> Predicate:
        """A field in a constant list (SQL IN) or a text field inside a constant string."""
        if isinstance(values, str) and field.kind == "text" and not field.is_column:
            literal = sa.literal(values, sa.Text())
            position = sa.func.strpos if self.pg else sa.func.instr
            return position(literal, field.value) > 0
        if not isinstance(values, list):
            raise FilterError(
                f"expected a list of values, not {_describe(values)}", pointer=pointer
            )
        if field.kind not in ("text", "number", "boolean"):
            raise FilterError(
                f"'{field.key}' is a {_type_label(field)} field and cannot be looked up in a list",
                pointer=pointer,
            )
        if len(values) > MAX_LIST_VALUES:
            raise FilterError(
                f"the list has {len(values)} values; at most {MAX_LIST_VALUES} are allowed",
                pointer=pointer,
            )
        present: list[Any] = []
        for index, item in enumerate(values):
            if item is None:
                continue
            if not _matches_kind(field.kind, item):
                raise FilterError(
                    f"'{field.key}' is a {_type_label(field)} field; the list holds "
                    f"{_describe(item)}",
                    pointer=f"{pointer}/{index}",
                )
            if field.kind == "text":
                item = _temporal_literal(field, item, f"{pointer}/{index}")
            present.append(item)
        if not present:
            return sa.false()
        return self.one_of(field, present)

    def one_of(self, field: _Field, values: list[Any]) -> Predicate:
        """``field`` equals one of ``values``, with the whole list bound as *one* parameter
        (``= ANY(:array)`` / ``IN (SELECT value FROM json_each(:json))``): any length binds,
        where one parameter per value would run into PostgreSQL's 32,767 and SQLite's
        32,766 parameters, and the statement's text (so its cached plan) does not depend on
        the list's length."""
        if self.pg:
            element: sa.types.TypeEngine[Any]
            if field.kind == "number":
                element = sa.Numeric()
                values = [Decimal(repr(v)) if isinstance(v, float) else v for v in values]
            elif field.kind == "boolean":
                element = sa.Boolean()
            else:
                element = sa.Text()
            return field.value == sa.any_(sa.literal(values, ARRAY(element)))
        listed = sa.func.json_each(sa.literal(json.dumps(values), sa.Text())).table_valued("value")
        return field.value.in_(sa.select(listed.c.value))

    # -- missing / missing_some --------------------------------------------------------

    def missing_key(self, key: Any, pointer: str) -> Predicate:
        field = self.field(key, pointer)
        return self.by_value_class({"missing": [field.key]}, pointer, field)

    def missing_keys(self, keys: Any, pointer: str) -> list[tuple[str, str]]:
        if _reads_data(keys):
            raise FilterError("the field list must be constant", pointer=pointer)
        keys = self.fold(keys, pointer)
        if not isinstance(keys, list):  # {"missing": "key"}
            return [(keys, pointer)]
        if keys and isinstance(keys[0], list):  # {"missing": [["a", "b"]]}
            named = [(k, f"{pointer}/0/{i}") for i, k in enumerate(keys[0])]
        else:
            named = [(k, f"{pointer}/{i}") for i, k in enumerate(keys)]
        distinct = {json.dumps(k, sort_keys=True) for k, _ in named}
        if len(distinct) > MAX_FIELD_NAMES:
            raise FilterError(
                f"names {len(distinct)} fields; at most {MAX_FIELD_NAMES} are allowed",
                pointer=pointer,
            )
        return named

    def missing(self, args: Any, op_pointer: str) -> Predicate:
        keys = self.missing_keys(args, op_pointer)
        # A field named twice is missing once: one SQL test per field, not per mention.
        first: dict[str, tuple[Any, str]] = {}
        for key, pointer in keys:
            first.setdefault(json.dumps(key, sort_keys=True), (key, pointer))
        return _or(*(self.missing_key(k, p) for k, p in first.values()))

    def missing_some(self, args: Any, pointer: str, op_pointer: str) -> Predicate:
        arguments = _arguments(args, op_pointer)
        if len(arguments) != 2 or _reads_data(args):
            raise FilterError(
                "'missing_some' takes a constant count and a list of fields", pointer=op_pointer
            )
        need = self.fold(arguments[0][0], arguments[0][1])
        keys = self.missing_keys(arguments[1][0], arguments[1][1])
        fields = [self.field(k, p) for k, p in keys]
        if len({f.key for f in fields}) != len(fields):
            raise FilterError("'missing_some' lists a field twice", pointer=arguments[1][1])
        # The answer depends only on how many of the fields are missing: ask for each count.
        present_values = {f.key: _ORDINARY_VALUE[f.kind] for f in fields}
        truthy_counts = []
        for count in range(len(fields) + 1):
            data = dict(present_values)
            for f in fields[:count]:
                del data[f.key]
            if self.probe({"missing_some": [need, [f.key for f in fields]]}, data, pointer):
                truthy_counts.append(count)
        if not truthy_counts:
            return sa.false()
        missing_count = sum(
            (sa.case((self.missing_key(k, p), 1), else_=0) for k, p in keys),
            start=sa.literal(0),
        )
        return missing_count.in_(truthy_counts)


def _source(operand: _Operand) -> _Field:
    if isinstance(operand, _Derived):
        return operand.source
    assert isinstance(operand, _Field)
    return operand


def _column_kind(key: str, column: ColumnElement[Any], pointer: str) -> Kind:
    column_type = column.type
    if isinstance(column_type, sa.types.TypeDecorator):  # e.g. a UTC-normalising datetime
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.DateTime):
        return "timestamp"
    if isinstance(column_type, sa.Boolean):
        return "boolean"
    if isinstance(column_type, sa.Integer | sa.Numeric):
        return "number"
    if isinstance(column_type, sa.String):
        return "text"
    raise FilterError(f"column '{key}' cannot be filtered", pointer=pointer)


def _matches_kind(kind: Kind, value: Any) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    return False


def _type_label(field: _Field) -> str:
    return field.kind if field.is_column else field.field_type


def _samples(field: _Field) -> tuple[Any, ...]:
    if field.kind == "timestamp":
        return _SAMPLES_BY_KIND["timestamp"]
    return _SAMPLES_BY_TYPE.get(field.field_type, _SAMPLES_BY_KIND[field.kind])


def _timestamp_bounds(value: Any, pointer: str = "") -> tuple[datetime, datetime] | None:
    """For a literal L: (low, high) with text(x) < L ⟺ x < low and text(x) <= L ⟺ x < high,
    where text(x) is x in UTC as ``YYYY-MM-DDTHH:MM:SSZ`` (seconds truncated)."""
    if not isinstance(value, str):
        return None
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return midnight, midnight
    normalised = _normalise_datetime(value, pointer)
    if normalised is None:
        return None
    low = datetime.strptime(normalised, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if low == datetime.max.replace(microsecond=0, tzinfo=UTC):
        # No instant comes after the last second of 9999: text(x) <= L holds for every x.
        return low, datetime.max.replace(tzinfo=UTC)
    return low, low + timedelta(seconds=1)


_OPERATIONS: Final[Mapping[str, Callable[[Any, Any], Predicate]]] = {
    "==": lambda a, b: a == b,
    "===": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "!==": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _or(*parts: Predicate) -> Predicate:
    """OR that drops constant-false parts (and collapses to a constant when it can)."""
    kept = [p for p in parts if not isinstance(p, False_)]
    if any(isinstance(p, True_) for p in kept):
        return sa.true()
    if not kept:
        return sa.false()
    return kept[0] if len(kept) == 1 else sa.or_(*kept)


def _and(*parts: Predicate) -> Predicate:
    """AND that drops constant-true parts (and collapses to a constant when it can)."""
    kept = [p for p in parts if not isinstance(p, True_)]
    if any(isinstance(p, False_) for p in kept):
        return sa.false()
    if not kept:
        return sa.true()
    return kept[0] if len(kept) == 1 else sa.and_(*kept)


def _apply(op: str, left: ColumnElement[Any], right: ColumnElement[Any]) -> Predicate:
    return _OPERATIONS[op](left, right)


def compile_filter(rule: Any, target: FilterTarget, *, now: datetime) -> ColumnElement[bool]:
    """The SQL condition selecting exactly the records for which ``rule`` is truthy.

    ``now`` (timezone-aware) is what ``today``/``now`` mean, as in ``evaluate``. Raises
    :class:`FilterError` (with ``pointer``) for anything outside the supported subset.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    _check_shape(rule)
    return _Compiler(target, now).predicate(rule, "")


def _check_shape(rule: Any) -> None:
    """Refuse what the evaluator would quietly read as a constant: an object that is not one
    operation (``{"==": [...], "!=": [...]}`` is a literal object to JsonLogic, always true),
    and argument lists of the wrong length (``{"==": [a, b, c]}``: a filter's equality
    compares two values; ``{"!": [a, b]}`` would ignore ``b``)."""
    stack: list[tuple[Any, str]] = [(rule, "")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, list):
            if len(node) > MAX_LIST_VALUES:  # before anything walks it (a stalled server)
                raise FilterError(
                    f"the list has {len(node)} values; at most {MAX_LIST_VALUES} are allowed",
                    pointer=pointer,
                )
            # only containers need a look (and a pointer): plain values are not operations
            stack.extend(
                (item, f"{pointer}/{i}")
                for i, item in reversed(list(enumerate(node)))
                if isinstance(item, dict | list)
            )
            continue
        if not isinstance(node, dict):
            continue
        if len(node) != 1:
            keys = ", ".join(_describe(str(k)) for k in list(node)[:4])
            raise FilterError(
                "an object in a filter must be one operation, "
                '{"operator": [arguments]}; '
                + (f"this one has {len(node)} keys ({keys})" if node else "this one is empty"),
                pointer=pointer,
            )
        ((op, args),) = node.items()
        op_pointer = f"{pointer}/{_escape_pointer(str(op))}"
        if op == "preserve":  # its argument is data, not logic
            continue
        if isinstance(args, list) and op not in _OWN_ARITY_MESSAGES:
            low, high = (2, 2) if op in _EQUALITY else ARITY.get(op, (0, None))
            if len(args) < low or (high is not None and len(args) > high):
                raise FilterError(_arity_message(op, low, high, len(args)), pointer=op_pointer)
        stack.append((args, op_pointer))


def _check_conditions(node: Any, pointer: str) -> None:
    """Refuse a value where a condition belongs (the whole filter, an argument of ``and``,
    ``or``, ``!``, ``!!``): JsonLogic would take the truthiness of ``"abc"``, ``0`` or
    ``[1, 2]``, but as a condition that is a mistake (a value where a test was meant)."""
    stack: list[tuple[Any, str]] = [(node, pointer)]
    while stack:
        node, pointer = stack.pop()
        operation = _operation(node)
        if operation is None:
            if node is None or isinstance(node, bool):
                continue
            what = "a list" if isinstance(node, list) else f"the value {_describe(node)}"
            raise FilterError(
                "a condition must be an operation such as "
                f'{{"==": [{{"var": "status"}}, "new"]}}, or true/false; {what} is not one',
                pointer=pointer,
            )
        op, args = operation
        if op in ("and", "or", "!", "!!"):
            op_pointer = f"{pointer}/{_escape_pointer(op)}"
            stack.extend(reversed(_arguments(args, op_pointer)))


def _arity_message(op: str, low: int, high: int | None, count: int) -> str:
    if high is None:
        wanted = f"at least {low}"
    elif low == high:
        wanted = str(low)
    else:
        wanted = f"{low} to {high}"
    message = f"'{op}' takes {wanted} argument{'' if wanted == '1' else 's'}, not {count}"
    if op in _EQUALITY:
        message += "; to test several values use 'in', e.g. " + (
            '{"in": [{"var": "status"}, ["new", "open"]]}'
        )
    return message
