"""Field definitions: one immutable pydantic model per field type, discriminated on ``type``.

A field model is the *spec* of one field and knows everything type-specific about it:

* ``value_schema()`` — the JSON Schema (2020-12) of a stored value of the field;
* ``normalise(value, problems)`` — bring an incoming value into its stored form
  (datetimes to UTC ``Z``, emails trimmed, ``""`` to "no value", ...);
* ``check_constraints(value)`` — rules JSON Schema cannot express (``min``/``max`` of dates,
  datetimes and times);
* ``describe(error, subpath)`` — turn a ``jsonschema`` error about the field's value into a
  :class:`Problem` with an error code and a message that reads well to a person.

Invariants checked when a model is built (each error located by pydantic's ``loc``):
``min <= max`` for every pair of limits, a ``pattern`` is a valid regular expression, option
values are unique, a literal ``default`` is a valid value of the field, ``default`` and
``default_expr`` are not both given, table columns have unique keys and no ``unique``/
``indexed`` flags, computed columns of a table do not depend on themselves. Checks that need
the whole form (duplicate keys, ``title_field``, computed cycles) live in :mod:`.spec`.

Fields are frozen and forbid unknown attributes, so a typo in an app definition is an error
rather than a silently ignored setting.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Self, TypeAlias

from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from formloom.engines.forms.interop import Coding, FhirItem
from formloom.engines.forms.labels import Label, humanize_key, label_text
from formloom.engines.forms.richtext import plain_text, sanitise
from formloom.engines.forms.values import (
    DATE_PATTERN,
    DATETIME_PATTERN,
    EMAIL_PATTERN,
    PHONE_PATTERN,
    TIME_PATTERN,
    URL_PATTERN,
    ValueProblem,
    format_number,
    human_size,
    normalise_date,
    normalise_datetime,
    normalise_integer,
    normalise_time,
    normalise_trimmed,
    parse_date,
    parse_datetime,
    parse_time,
    time_seconds,
)

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
TEXT_MAX_LENGTH = 1000
TEXTAREA_MAX_LENGTH = 100_000
#: Most characters of text (tags not counted) a rich text field takes unless told.
RICHTEXT_MAX_LENGTH = 10_000
#: Most characters of stored HTML (tags counted): bounds what one value may cost.
RICHTEXT_HTML_MAX_LENGTH = 200_000
RATING_MAX = 10
RATING_MIN_STARS = 3
SIGNATURE_TYPE = "image/png"
MIME_PATTERN = r"^(\*/\*|[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$"

FieldKey: TypeAlias = Annotated[
    str,
    Field(
        pattern=KEY_PATTERN,
        description=(
            "Identifier of the field in record data: lower-case letters, digits and "
            "underscores, starting with a letter, at most 63 characters. Unique within the "
            "form (table columns: unique within their table)."
        ),
    ),
]
Rule: TypeAlias = Annotated[
    dict[str, Any] | bool,
    Field(description="A JsonLogic expression (or a constant true/false)."),
]
Expression: TypeAlias = Annotated[
    dict[str, Any], Field(description='A JsonLogic expression, e.g. {"today": []}.')
]

Loc: TypeAlias = tuple[str | int, ...]


class Problem(NamedTuple):
    """One thing wrong with a value: error code, full message, path inside the value."""

    code: str
    message: str
    subpath: tuple[str | int, ...] = ()


class DefinitionIssue(NamedTuple):
    """One thing wrong with a definition, located relative to the model that finds it."""

    loc: Loc
    kind: str
    message: str
    value: Any = None


def raise_issues(title: str, issues: Sequence[DefinitionIssue]) -> None:
    """Raise every issue at once as one pydantic ``ValidationError`` (no-op when empty).

    Raised from a model validator, the errors keep their own ``loc`` (prefixed by pydantic
    with the model's position), so callers can point at ``fields/3/default``.
    """
    if not issues:
        return
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError(issue.kind, "{reason}", {"reason": issue.message}),
                loc=issue.loc,
                input=issue.value,
            )
            for issue in issues
        ],
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class Option(BaseModel):
    """One choice of a select or multiselect field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str = Field(min_length=1, max_length=200, description="The value stored in record data.")
    label: Label | None = Field(
        default=None, description="Text shown for the option; defaults to the value."
    )
    score: float | None = Field(
        default=None,
        description="The option's score (FHIR ordinalValue / itemWeight), e.g. 0-3 in a PHQ-9.",
    )
    code: Coding | None = Field(
        default=None, description="The option's code in a code system (FHIR answer coding)."
    )

    @property
    def title(self) -> str:
        return label_text(self.label) or self.value


class BaseField(BaseModel):
    """Attributes every field has, layout-only sections included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: FieldKey
    label: Label | None = Field(
        default=None, description="Field label; defaults to the key made readable."
    )
    help: Label | None = Field(default=None, description="Help text shown with the field.")
    width: int | None = Field(
        default=None,
        ge=1,
        le=4,
        description="How much of a row the field takes in the generated form and on the "
        "record page, in quarters: 1 (a quarter) to 4 (the whole row). Unset: half a row; "
        "the whole row for long text, multiple choice, tables, files and images. On narrow "
        "screens (a phone) every field takes the whole row. No effect on sections and "
        "table columns.",
    )
    visible_if: Rule | None = Field(
        default=None,
        description=(
            "JsonLogic over the record data; when false the field is hidden: not required, "
            "not stored. In a table column it sees the row's columns and the record's fields."
        ),
    )
    fhir: FhirItem | None = Field(
        default=None,
        description="How the field appears as a FHIR Questionnaire item (docs/fhir.md).",
    )

    #: Short description of an acceptable value, used in "must be ..." messages.
    expects: ClassVar[str] = "a valid value"
    #: Whether the field stores a value in record data (false for sections).
    has_value: ClassVar[bool] = True

    @property
    def field_type(self) -> str:
        return str(getattr(self, "type"))  # noqa: B009 - every concrete model declares it

    @property
    def title(self) -> str:
        """The English (or first) label, or the key made readable."""
        return label_text(self.label) or humanize_key(self.key)

    def value_schema(self) -> dict[str, Any]:
        """The JSON Schema of a stored value of this field."""
        raise NotImplementedError

    def normalise_value(self, value: Any) -> Any:
        """Bring one present, non-empty value into stored form (may raise ValueProblem)."""
        return value

    def normalise(self, value: Any, problems: list[Problem]) -> Any:
        """The stored form of ``value``; ``None`` means "no value" (or an unusable value,
        in which case a problem is appended)."""
        if value is None or value == "":
            return None
        try:
            return self.normalise_value(value)
        except ValueProblem as problem:
            problems.append(Problem(problem.code, f"{self.title} {problem.detail}"))
            return None

    def check_constraints(self, value: Any) -> list[Problem]:
        """Rules JSON Schema cannot express; ``value`` may be of the wrong type."""
        return []

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        """A person-readable problem for a ``jsonschema`` error about this field's value."""
        keyword: str = error.validator
        limit: Any = error.validator_value
        title = self.title
        if keyword == "type":
            return Problem("type", f"{title} must be {self.expects}", subpath)
        if keyword == "minimum":
            return Problem("min", f"{title} must be at least {format_number(limit)}", subpath)
        if keyword == "maximum":
            return Problem("max", f"{title} must be at most {format_number(limit)}", subpath)
        if keyword == "minLength":
            return Problem(
                "min_length",
                f"{title} must be at least {_plural(limit, 'character')} long",
                subpath,
            )
        if keyword == "maxLength":
            return Problem(
                "max_length",
                f"{title} must be at most {_plural(limit, 'character')} long",
                subpath,
            )
        if keyword == "pattern":
            return Problem("format", f"{title} must be {self.expects}", subpath)
        if keyword == "enum":
            return Problem("option", f"{title} must be one of the options", subpath)
        return Problem("invalid", f"{title} is not valid: {error.message}", subpath)

    def check_value(self, value: Any) -> list[Problem]:
        """Every problem of one literal value (slow path: used for defaults, not records)."""
        problems: list[Problem] = []
        normalised = self.normalise(value, problems)
        if problems or normalised is None:
            return problems
        validator = Draft202012Validator(self.value_schema())
        for error in validator.iter_errors(normalised):
            problems.append(self.describe(error, tuple(error.absolute_path)))
        if not problems:
            problems.extend(self.check_constraints(normalised))
        return problems


class InputField(BaseField):
    """A field whose value people (or API clients) enter."""

    required: bool = Field(
        default=False, description="A value is needed whenever the field is visible."
    )
    default: Any = Field(
        default=None,
        description="Literal value given to the field when a record is created without it.",
    )
    default_expr: Expression | None = Field(
        default=None,
        description=(
            "JsonLogic evaluated when a record is created without the field, over the data "
            'given, e.g. {"today": []}. Not together with default.'
        ),
    )
    read_only: bool = Field(
        default=False,
        description=(
            "Clients cannot write the field; its value comes from default/default_expr or "
            "server rules. Writing the value already stored is tolerated."
        ),
    )

    @model_validator(mode="after")
    def _check_input_field(self) -> Self:
        issues = self.definition_issues()
        if self.default is not None and self.default_expr is not None:
            issues.append(
                DefinitionIssue(
                    ("default_expr",),
                    "default_conflict",
                    "give either default or default_expr, not both",
                    self.default_expr,
                )
            )
        elif self.default is not None and not issues:
            issues.extend(
                DefinitionIssue(
                    ("default", *problem.subpath),
                    "invalid_default",
                    f"the default is not a valid value: {problem.message}",
                    self.default,
                )
                for problem in self.check_value(self.default)
            )
        raise_issues(type(self).__name__, issues)
        return self

    def definition_issues(self) -> list[DefinitionIssue]:
        """Type-specific definition checks (limits, patterns, options)."""
        return []


class IndexableField(InputField):
    """A field with a scalar value that can be indexed and required to be unique."""

    indexed: bool = Field(
        default=False, description="Create a database index so filters and sorts are fast."
    )
    unique: bool = Field(
        default=False, description="No two records of the form may have the same value."
    )


def _limit_issue(low: Any, high: Any, low_name: str, high_name: str) -> list[DefinitionIssue]:
    if low is not None and high is not None and low > high:
        return [
            DefinitionIssue(
                (low_name,),
                "min_above_max",
                f"{low_name} ({low}) is greater than {high_name} ({high})",
                low,
            )
        ]
    return []


class _TextLike(IndexableField):
    min_length: int | None = Field(default=None, ge=0, description="Fewest characters allowed.")
    max_length: int | None = Field(default=None, ge=1, description="Most characters allowed.")
    pattern: str | None = Field(
        default=None,
        description=("Regular expression the whole value must match (anchored at both ends)."),
    )
    pattern_message: Label | None = Field(
        default=None,
        description="Message shown when the pattern does not match, after the field label.",
    )

    default_max_length: ClassVar[int] = TEXT_MAX_LENGTH
    expects = "text"

    @property
    def effective_max_length(self) -> int:
        return self.max_length if self.max_length is not None else self.default_max_length

    def definition_issues(self) -> list[DefinitionIssue]:
        issues = _limit_issue(
            self.min_length, self.effective_max_length, "min_length", "max_length"
        )
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                issues.append(
                    DefinitionIssue(
                        ("pattern",),
                        "invalid_pattern",
                        f"not a valid regular expression: {exc}",
                        self.pattern,
                    )
                )
        return issues

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.effective_max_length}
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern})$"
        return schema

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        if error.validator == "pattern":
            custom = label_text(self.pattern_message)
            message = custom if custom else "is not in the expected format"
            return Problem("pattern", f"{self.title} {message}", subpath)
        return super().describe(error, subpath)


class TextField(_TextLike):
    """A single line of text."""

    type: Literal["text"] = Field(description="Field type.")


class TextareaField(_TextLike):
    """Multi-line text."""

    type: Literal["textarea"] = Field(description="Field type.")
    default_max_length: ClassVar[int] = TEXTAREA_MAX_LENGTH


class RichTextField(InputField):
    """Formatted text (bold, italic, lists, links): a sanitised HTML fragment.

    Every value written is sanitised (:mod:`.richtext`) before it is validated or stored, so
    a stored value holds only the allowed tags; a value with no text left (``<p><br></p>``)
    is no value. ``max_length`` counts the characters of the text, not of the tags.
    """

    type: Literal["richtext"] = Field(description="Field type.")
    max_length: int | None = Field(
        default=None,
        ge=1,
        le=RICHTEXT_HTML_MAX_LENGTH,
        description=f"Most characters of text allowed (tags not counted); "
        f"{RICHTEXT_MAX_LENGTH} when not given.",
    )

    expects = "formatted text (HTML)"

    @property
    def effective_max_length(self) -> int:
        return self.max_length if self.max_length is not None else RICHTEXT_MAX_LENGTH

    def definition_issues(self) -> list[DefinitionIssue]:
        # The form page puts a new record's default into the editor as HTML: it must
        # already be what the sanitiser keeps (a record's value is sanitised on write).
        if isinstance(self.default, str) and sanitise(self.default) != self.default.strip():
            return [
                DefinitionIssue(
                    ("default",),
                    "unsafe_default",
                    "the default holds HTML a rich text value may not keep; allowed: "
                    f"{sanitise(self.default)!r}",
                    self.default,
                )
            ]
        return []

    def normalise_value(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the validator reports the type
        cleaned = sanitise(value)
        return cleaned if plain_text(cleaned) else None

    def value_schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "contentMediaType": "text/html",
            "maxLength": RICHTEXT_HTML_MAX_LENGTH,
        }

    def check_constraints(self, value: Any) -> list[Problem]:
        if not isinstance(value, str):
            return []
        length = len(plain_text(value))
        if length > self.effective_max_length:
            return [
                Problem(
                    "max_length",
                    f"{self.title} must be at most "
                    f"{_plural(self.effective_max_length, 'character')} long "
                    f"(it has {length})",
                )
            ]
        return []

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        if error.validator == "maxLength":
            return Problem(
                "max_length",
                f"{self.title} must be at most {_plural(error.validator_value, 'character')} "
                "of HTML long",
                subpath,
            )
        return super().describe(error, subpath)


class NumberField(IndexableField):
    """A number (decimals allowed)."""

    type: Literal["number"] = Field(description="Field type.")
    min: float | None = Field(default=None, description="Smallest value allowed.")
    max: float | None = Field(default=None, description="Largest value allowed.")

    expects = "a number"

    def definition_issues(self) -> list[DefinitionIssue]:
        return _limit_issue(self.min, self.max, "min", "max")

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "number"}
        if self.min is not None:
            schema["minimum"] = self.min
        if self.max is not None:
            schema["maximum"] = self.max
        return schema


class IntegerField(IndexableField):
    """A whole number."""

    type: Literal["integer"] = Field(description="Field type.")
    min: int | None = Field(default=None, description="Smallest value allowed.")
    max: int | None = Field(default=None, description="Largest value allowed.")

    expects = "a whole number"

    def definition_issues(self) -> list[DefinitionIssue]:
        return _limit_issue(self.min, self.max, "min", "max")

    def normalise_value(self, value: Any) -> Any:
        return normalise_integer(value)

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer"}
        if self.min is not None:
            schema["minimum"] = self.min
        if self.max is not None:
            schema["maximum"] = self.max
        return schema


class RatingField(IndexableField):
    """Stars: a whole number from 1 to ``max`` (5 unless told, 3 to 10); stored as an integer
    and read everywhere (filters, reports, sorting) as an integer field is."""

    type: Literal["rating"] = Field(description="Field type.")
    max: int = Field(
        default=5,
        ge=RATING_MIN_STARS,
        le=RATING_MAX,
        description=f"How many stars: the highest rating ({RATING_MIN_STARS} to {RATING_MAX}).",
    )

    @property
    def expects(self) -> str:  # type: ignore[override]
        return f"a whole number of stars from 1 to {self.max}"

    def normalise_value(self, value: Any) -> Any:
        return normalise_integer(value)

    def value_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 1, "maximum": self.max}

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        if error.validator in ("minimum", "maximum"):
            code = "min" if error.validator == "minimum" else "max"
            return Problem(code, f"{self.title} must be from 1 to {self.max} stars", subpath)
        return super().describe(error, subpath)


class BooleanField(IndexableField):
    """Yes / no."""

    type: Literal["boolean"] = Field(description="Field type.")

    expects = "true or false"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class DateField(IndexableField):
    """A calendar date, stored as YYYY-MM-DD."""

    type: Literal["date"] = Field(description="Field type.")
    min: str | None = Field(
        default=None, pattern=DATE_PATTERN, description="Earliest date allowed (YYYY-MM-DD)."
    )
    max: str | None = Field(
        default=None, pattern=DATE_PATTERN, description="Latest date allowed (YYYY-MM-DD)."
    )

    expects = "a date in the form YYYY-MM-DD"

    def definition_issues(self) -> list[DefinitionIssue]:
        issues = [
            DefinitionIssue((name,), "invalid_limit", "not a real calendar date", limit)
            for name, limit in (("min", self.min), ("max", self.max))
            if limit is not None and parse_date(limit) is None
        ]
        return issues or _limit_issue(self.min, self.max, "min", "max")

    def normalise_value(self, value: Any) -> Any:
        return normalise_date(value)

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
        if self.min is not None:
            schema["formatMinimum"] = self.min
        if self.max is not None:
            schema["formatMaximum"] = self.max
        return schema

    def check_constraints(self, value: Any) -> list[Problem]:
        if not isinstance(value, str):
            return []
        if self.min is not None and value < self.min:
            return [Problem("min", f"{self.title} must be on or after {self.min}")]
        if self.max is not None and value > self.max:
            return [Problem("max", f"{self.title} must be on or before {self.max}")]
        return []


class DatetimeField(IndexableField):
    """An instant: ISO 8601 with an offset in, UTC YYYY-MM-DDTHH:MM:SSZ stored."""

    type: Literal["datetime"] = Field(description="Field type.")
    min: str | None = Field(
        default=None, description="Earliest instant allowed (ISO 8601 with offset or Z)."
    )
    max: str | None = Field(
        default=None, description="Latest instant allowed (ISO 8601 with offset or Z)."
    )

    expects = "a date and time in UTC, YYYY-MM-DDTHH:MM:SSZ"

    def _limit(self, limit: str | None) -> str | None:
        if limit is None:
            return None
        try:
            normalised: str = normalise_datetime(limit)
        except ValueProblem:
            return None
        return normalised

    def definition_issues(self) -> list[DefinitionIssue]:
        issues = [
            DefinitionIssue(
                (name,),
                "invalid_limit",
                "not an ISO 8601 date and time with a time zone offset",
                limit,
            )
            for name, limit in (("min", self.min), ("max", self.max))
            if limit is not None and self._limit(limit) is None
        ]
        return issues or _limit_issue(self._limit(self.min), self._limit(self.max), "min", "max")

    def normalise_value(self, value: Any) -> Any:
        return normalise_datetime(value)

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "string",
            "format": "date-time",
            "pattern": DATETIME_PATTERN,
        }
        if self.min is not None:
            schema["formatMinimum"] = self._limit(self.min)
        if self.max is not None:
            schema["formatMaximum"] = self._limit(self.max)
        return schema

    def check_constraints(self, value: Any) -> list[Problem]:
        if not isinstance(value, str):
            return []
        low, high = self._limit(self.min), self._limit(self.max)
        if low is not None and value < low:
            return [Problem("min", f"{self.title} must be at or after {low}")]
        if high is not None and value > high:
            return [Problem("max", f"{self.title} must be at or before {high}")]
        return []


class TimeField(IndexableField):
    """A time of day, HH:MM or HH:MM:SS."""

    type: Literal["time"] = Field(description="Field type.")
    min: str | None = Field(
        default=None, pattern=TIME_PATTERN, description="Earliest time allowed (HH:MM[:SS])."
    )
    max: str | None = Field(
        default=None, pattern=TIME_PATTERN, description="Latest time allowed (HH:MM[:SS])."
    )

    expects = "a time in the form HH:MM or HH:MM:SS"

    def definition_issues(self) -> list[DefinitionIssue]:
        if self.min is not None and self.max is not None:
            return _limit_issue(time_seconds(self.min), time_seconds(self.max), "min", "max")
        return []

    def normalise_value(self, value: Any) -> Any:
        return normalise_time(value)

    def value_schema(self) -> dict[str, Any]:
        # No "format": JSON Schema's `time` demands seconds and an offset; stored times are
        # HH:MM[:SS] local times, which the pattern describes exactly.
        schema: dict[str, Any] = {"type": "string", "pattern": TIME_PATTERN}
        if self.min is not None:
            schema["formatMinimum"] = self.min
        if self.max is not None:
            schema["formatMaximum"] = self.max
        return schema

    def check_constraints(self, value: Any) -> list[Problem]:
        if not isinstance(value, str) or parse_time(value) is None:
            return []
        seconds = time_seconds(value)
        if self.min is not None and seconds < time_seconds(self.min):
            return [Problem("min", f"{self.title} must be at or after {self.min}")]
        if self.max is not None and seconds > time_seconds(self.max):
            return [Problem("max", f"{self.title} must be at or before {self.max}")]
        return []


def _option_issues(options: Sequence[Option]) -> list[DefinitionIssue]:
    seen: set[str] = set()
    issues: list[DefinitionIssue] = []
    for index, option in enumerate(options):
        if option.value in seen:
            issues.append(
                DefinitionIssue(
                    ("options", index, "value"),
                    "duplicate_option",
                    f"option value {option.value!r} appears more than once",
                    option.value,
                )
            )
        seen.add(option.value)
    return issues


def _option_list(options: Sequence[Option]) -> str:
    shown = ", ".join(option.value for option in options[:10])
    return shown + (", ..." if len(options) > 10 else "")


OptionList: TypeAlias = Annotated[
    tuple[Option, ...],
    Field(min_length=1, description="The choices; option values are unique."),
]


class SelectField(IndexableField):
    """One choice out of a list of options; stores the option's value."""

    type: Literal["select"] = Field(description="Field type.")
    options: OptionList

    expects = "one of the options"

    def definition_issues(self) -> list[DefinitionIssue]:
        return _option_issues(self.options)

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": [option.value for option in self.options]}

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        if error.validator == "enum":
            return Problem(
                "option",
                f"{self.title} must be one of: {_option_list(self.options)} "
                f"(got {error.instance!r})",
                subpath,
            )
        return super().describe(error, subpath)


class MultiselectField(InputField):
    """Several choices out of a list of options; stores a list of unique option values."""

    type: Literal["multiselect"] = Field(description="Field type.")
    options: OptionList
    min_items: int | None = Field(default=None, ge=0, description="Fewest choices.")
    max_items: int | None = Field(default=None, ge=1, description="Most choices.")
    indexed: bool = Field(
        default=False,
        description="Index the choices so filters on one of them are fast (a GIN index on "
        "PostgreSQL).",
    )

    expects = "a list of options"

    def definition_issues(self) -> list[DefinitionIssue]:
        return _option_issues(self.options) + _limit_issue(
            self.min_items, self.max_items, "min_items", "max_items"
        )

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "array",
            "items": {"type": "string", "enum": [option.value for option in self.options]},
            "uniqueItems": True,
        }
        if self.min_items:
            schema["minItems"] = self.min_items
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        return schema

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        keyword = error.validator
        title = self.title
        if keyword == "enum":
            return Problem(
                "option",
                f"{title}: {error.instance!r} is not one of the options "
                f"({_option_list(self.options)})",
                subpath,
            )
        if keyword == "type" and subpath:
            return Problem("type", f"{title} must contain option values (text)", subpath)
        if keyword == "uniqueItems":
            counts: dict[str, tuple[Any, int]] = {}
            for item in error.instance:
                key = json.dumps(item, sort_keys=True)
                counts[key] = (item, counts.get(key, (item, 0))[1] + 1)
            repeated = ", ".join(repr(item) for item, count in counts.values() if count > 1)
            return Problem("duplicate", f"{title} lists {repeated} more than once", subpath)
        if keyword == "minItems":
            return Problem(
                "min_items",
                f"{title} needs at least {_plural(error.validator_value, 'choice')}",
                subpath,
            )
        if keyword == "maxItems":
            return Problem(
                "max_items",
                f"{title} allows at most {_plural(error.validator_value, 'choice')}",
                subpath,
            )
        return super().describe(error, subpath)


class ContactField(IndexableField):
    """A trimmed contact value of a fixed shape; too long is reported as the wrong shape."""

    expects: ClassVar[str] = "a valid value"

    def normalise_value(self, value: Any) -> Any:
        return normalise_trimmed(value) or None

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        if error.validator == "maxLength":
            return Problem("format", f"{self.title} must be {self.expects}", subpath)
        return super().describe(error, subpath)


class EmailField(ContactField):
    """An email address (trimmed)."""

    type: Literal["email"] = Field(description="Field type.")

    expects = "a valid email address"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "email", "pattern": EMAIL_PATTERN, "maxLength": 254}


class PhoneField(ContactField):
    """A phone number: optional +, 5-20 digits, spaces, dashes, parentheses (trimmed)."""

    type: Literal["phone"] = Field(description="Field type.")

    expects = "a valid phone number (digits, with an optional leading +)"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": PHONE_PATTERN, "maxLength": 40}


class UrlField(IndexableField):
    """A web address (http or https)."""

    type: Literal["url"] = Field(description="Field type.")

    expects = "a web address starting with http:// or https://"

    def normalise_value(self, value: Any) -> Any:
        return normalise_trimmed(value) or None

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uri", "pattern": URL_PATTERN, "maxLength": 2000}


class RelationField(IndexableField):
    """A link to a record of another form of the same app; stores the target record's id."""

    type: Literal["relation"] = Field(description="Field type.")
    target: FieldKey = Field(description="Key of the target form (in the same app).")

    expects = "a record id (text)"

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": 200, "x-target": self.target}


def _content_type_pattern(accept: Sequence[str]) -> str | None:
    if not accept or "*/*" in accept:
        return None
    parts = []
    for item in accept:
        major, minor = item.split("/", 1)
        parts.append(re.escape(major) + "/" + ("[^/;\\s]+" if minor == "*" else re.escape(minor)))
    return "^(" + "|".join(parts) + ")$"


class _FileLike(InputField):
    accept: tuple[Annotated[str, Field(pattern=MIME_PATTERN)], ...] | None = Field(
        default=None,
        description='Allowed MIME types, "type/subtype" or "type/*" (e.g. "image/*").',
    )
    max_size: int | None = Field(default=None, ge=1, description="Largest file, in bytes.")
    multiple: bool = Field(default=False, description="Store a list of files instead of one.")

    default_accept: ClassVar[tuple[str, ...]] = ()
    expects = "a file ({id, name, content_type, size})"

    @property
    def effective_accept(self) -> tuple[str, ...]:
        return self.accept if self.accept is not None else self.default_accept

    def file_schema(self) -> dict[str, Any]:
        content_type: dict[str, Any] = {"type": "string", "minLength": 1}
        pattern = _content_type_pattern(self.effective_accept)
        if pattern is not None:
            content_type["pattern"] = pattern
        size: dict[str, Any] = {"type": "integer", "minimum": 0}
        if self.max_size is not None:
            size["maximum"] = self.max_size
        return {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "name": {"type": "string"},
                "content_type": content_type,
                "size": size,
            },
            "required": ["id", "name", "content_type", "size"],
            "additionalProperties": False,
        }

    def value_schema(self) -> dict[str, Any]:
        if self.multiple:
            return {"type": "array", "items": self.file_schema()}
        return self.file_schema()

    def _normalise_file(self, value: Any) -> Any:
        content_type = value.get("content_type") if isinstance(value, dict) else None
        if isinstance(content_type, str) and content_type != content_type.lower():
            return {**value, "content_type": content_type.lower()}
        return value

    def normalise_value(self, value: Any) -> Any:
        if self.multiple and isinstance(value, list):
            return [self._normalise_file(item) for item in value]
        return self._normalise_file(value)

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        keyword = error.validator
        title = self.title
        attribute = subpath[-1] if subpath else None
        if keyword == "pattern" and attribute == "content_type":
            return Problem(
                "file_type",
                f"{title} must be a file of type {', '.join(self.effective_accept)} "
                f"(got {error.instance})",
                subpath,
            )
        if keyword == "maximum" and attribute == "size":
            return Problem(
                "file_size",
                f"{title} must be at most {human_size(error.validator_value)} "
                f"(the file is {human_size(error.instance)})",
                subpath,
            )
        if keyword == "type" and self.multiple and not subpath:
            return Problem("type", f"{title} must be a list of files", subpath)
        if keyword in ("type", "required", "additionalProperties", "minLength", "minimum"):
            # One malformed file reference is one problem, whatever part of it is wrong.
            where = subpath[:1] if self.multiple else ()
            return Problem("type", f"{title} must be {self.expects}", where)
        return super().describe(error, subpath)


class FileField(_FileLike):
    """An uploaded file (or several): {"id", "name", "content_type", "size"}."""

    type: Literal["file"] = Field(description="Field type.")


class ImageField(_FileLike):
    """An uploaded image (or several); accepts image/* unless told otherwise."""

    type: Literal["image"] = Field(description="Field type.")
    default_accept: ClassVar[tuple[str, ...]] = ("image/*",)
    expects = "an image ({id, name, content_type, size})"


class SignatureField(_FileLike):
    """A handwritten signature: the PNG image the form's drawing pad uploads, stored as an
    image file reference ({"id", "name", "content_type", "size"}) under the file permissions.

    One signature per field: ``multiple`` is refused; ``accept`` is ``image/png`` unless told.
    """

    type: Literal["signature"] = Field(description="Field type.")
    default_accept: ClassVar[tuple[str, ...]] = (SIGNATURE_TYPE,)
    expects = "a signature (a PNG image: {id, name, content_type, size})"

    def definition_issues(self) -> list[DefinitionIssue]:
        if self.multiple:
            return [
                DefinitionIssue(
                    ("multiple",), "not_supported", "a signature field holds one signature", True
                )
            ]
        return []


ResultType: TypeAlias = Literal["text", "number", "integer", "boolean", "date"]


class ComputedField(BaseField):
    """A value the server computes from a JsonLogic formula; clients never write it."""

    type: Literal["computed"] = Field(description="Field type.")
    formula: Expression = Field(
        description="JsonLogic over the record data (other computed fields included)."
    )
    result_type: ResultType = Field(
        default="text", description="Type of the computed value: text|number|integer|boolean|date."
    )
    indexed: bool = Field(
        default=False, description="Create a database index so filters and sorts are fast."
    )
    unique: bool = Field(
        default=False, description="No two records of the form may have the same value."
    )

    @property
    def expects(self) -> str:  # type: ignore[override]
        return {
            "text": "text",
            "number": "a number",
            "integer": "a whole number",
            "boolean": "true or false",
            "date": "a date in the form YYYY-MM-DD",
        }[self.result_type]

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "text": {"type": "string"},
            "number": {"type": "number"},
            "integer": {"type": "integer"},
            "boolean": {"type": "boolean"},
            "date": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
        }[self.result_type]
        return {**schema, "readOnly": True}

    def coerce(self, result: Any) -> Any:
        """The stored form of a formula's result (``None``: no value); may raise ValueProblem."""
        if result is None or result == "":
            return None
        kind = self.result_type
        if kind == "boolean":
            return bool(result)
        if kind == "text":
            if isinstance(result, str):
                return result
            if isinstance(result, bool):
                return "true" if result else "false"
            if isinstance(result, int | float):
                return format_number(result)
            return json.dumps(result, ensure_ascii=False)
        if kind == "date":
            if isinstance(result, str):
                if parse_date(result) is not None:
                    return result
                instant = parse_datetime(result)
                if instant is not None and parse_date(result[:10]) is not None:
                    return result[:10]
            raise ValueProblem("computed", f"did not compute to a date (got {result!r})")
        number: float | int
        if isinstance(result, bool):
            raise ValueProblem("computed", f"did not compute to a number (got {result!r})")
        if isinstance(result, int | float):
            number = result
        else:
            try:
                number = float(str(result).strip())
            except ValueError:
                raise ValueProblem(
                    "computed", f"did not compute to a number (got {result!r})"
                ) from None
        if not math.isfinite(number):
            raise ValueProblem("computed", f"did not compute to a finite number ({number})")
        if kind == "integer":
            return int(round(number))
        if isinstance(number, float) and number.is_integer() and isinstance(result, str):
            return int(number)
        return number


class SectionField(BaseField):
    """Layout only: a heading over the fields that follow it, up to the next section.

    Carries no value. Hiding a section (``visible_if``) hides every field in it.
    """

    type: Literal["section"] = Field(description="Field type.")

    has_value: ClassVar[bool] = False

    def value_schema(self) -> dict[str, Any]:
        raise TypeError("a section has no value")


#: The tokens of an auto-number's ``format``: date parts (at creation, in the clinic's zone)
#: and one counter, ``{0000}`` (as many digits as zeros, zero-padded).
AUTONUMBER_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|0{1,12})\}")
#: Which date parts each ``reset`` needs in the format, so numbers stay unique.
_RESET_NEEDS: dict[str, tuple[str, ...]] = {
    "never": (),
    "yearly": ("year",),
    "monthly": ("year", "MM"),
    "daily": ("year", "MM", "DD"),
}


class AutonumberField(IndexableField):
    """A serial number the server gives each new record of the form, e.g. ``CP-2026-0001``.

    ``format`` holds literal text and tokens: ``{YYYY}`` ``{YY}`` ``{MM}`` ``{DD}`` (the
    creation date on the clinic's clock) and exactly one counter ``{0000}`` (zero-padded to
    as many digits as zeros; a larger number just has more digits). The counter starts at 1
    and counts up per form and field — and per year, month or day when ``reset`` says so,
    which needs that date part in the format so that numbers stay unique. Clients never
    write the value (it is read-only: sending another value is a ``read_only`` error).
    """

    type: Literal["autonumber"] = Field(description="Field type.")
    format: str = Field(
        default="{0000}",
        min_length=1,
        max_length=100,
        description="Literal text with tokens {YYYY} {YY} {MM} {DD} (creation date) and one "
        "counter {0000} (zero-padded to that many digits), e.g. CP-{YYYY}-{0000}.",
    )
    reset: Literal["never", "yearly", "monthly", "daily"] = Field(
        default="never",
        description="Start counting again at 1 each year, month or day (the format must "
        "show that date part).",
    )
    read_only: bool = Field(
        default=True, description="Always true: only the server writes an auto-number."
    )

    expects = "a number the server gives (read-only)"

    def definition_issues(self) -> list[DefinitionIssue]:
        issues: list[DefinitionIssue] = []
        tokens = AUTONUMBER_TOKEN.findall(self.format)
        counters = [token for token in tokens if token.startswith("0")]
        if len(counters) != 1:
            issues.append(
                DefinitionIssue(
                    ("format",),
                    "autonumber_counter",
                    "the format needs exactly one counter token such as {0000}",
                    self.format,
                )
            )
        leftover = AUTONUMBER_TOKEN.sub("", self.format)
        if "{" in leftover or "}" in leftover:
            issues.append(
                DefinitionIssue(
                    ("format",),
                    "autonumber_token",
                    "unknown token in the format; use {YYYY} {YY} {MM} {DD} and {0000}",
                    self.format,
                )
            )
        shown = {"year" if token in ("YYYY", "YY") else token for token in tokens}
        missing = [part for part in _RESET_NEEDS[self.reset] if part not in shown]
        if missing:
            issues.append(
                DefinitionIssue(
                    ("reset",),
                    "autonumber_reset",
                    f"a {self.reset} reset needs the format to show the "
                    f"{', '.join('{YYYY}' if p == 'year' else '{' + p + '}' for p in missing)}"
                    " of the date, or numbers would repeat",
                    self.reset,
                )
            )
        if not self.read_only:
            issues.append(
                DefinitionIssue(
                    ("read_only",),
                    "autonumber_read_only",
                    "an auto-number is always read-only",
                    False,
                )
            )
        for name in ("default", "default_expr"):
            if getattr(self, name) is not None:
                issues.append(
                    DefinitionIssue(
                        (name,),
                        "autonumber_default",
                        "an auto-number has no default: the server numbers each record",
                        getattr(self, name),
                    )
                )
        if self.required:
            issues.append(
                DefinitionIssue(
                    ("required",),
                    "autonumber_required",
                    "an auto-number is always filled by the server; it cannot be required",
                    True,
                )
            )
        return issues

    def period(self, at: datetime) -> str:
        """The counter's period for a record created at ``at`` (local time): ``""`` when
        it never resets, else ``2026``, ``2026-12`` or ``2026-12-04``."""
        return {
            "never": "",
            "yearly": f"{at.year:04d}",
            "monthly": f"{at.year:04d}-{at.month:02d}",
            "daily": f"{at.year:04d}-{at.month:02d}-{at.day:02d}",
        }[self.reset]

    def render(self, counter: int, at: datetime) -> str:
        """The number shown for ``counter`` of a record created at ``at`` (local time)."""
        parts = {
            "YYYY": f"{at.year:04d}",
            "YY": f"{at.year % 100:02d}",
            "MM": f"{at.month:02d}",
            "DD": f"{at.day:02d}",
        }

        def token(match: re.Match[str]) -> str:
            name = match.group(1)
            return parts.get(name) or str(counter).rjust(len(name), "0")

        return AUTONUMBER_TOKEN.sub(token, self.format)

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": 200, "readOnly": True}


#: A user id (``users.id``): what a user field stores.
USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


class UserField(IndexableField):
    """A member of the app (a user with a role in it); stores the user's id, or with
    ``multiple`` a list of ids. Pages show the person's display name, never the id."""

    type: Literal["user"] = Field(description="Field type.")
    multiple: bool = Field(default=False, description="Store a list of people instead of one.")
    default_current: bool = Field(
        default=False,
        description="A record created without the field gets the signed-in person (not on "
        "public links, where nobody is signed in).",
    )

    @property
    def expects(self) -> str:  # type: ignore[override]
        return "a list of user ids" if self.multiple else "a user id"

    def definition_issues(self) -> list[DefinitionIssue]:
        return [
            DefinitionIssue(
                (flag,), "not_supported", f"{flag} is not supported on a multiple user field", True
            )
            for flag in ("unique", "indexed")
            if self.multiple and getattr(self, flag)
        ]

    def value_schema(self) -> dict[str, Any]:
        one = {"type": "string", "pattern": USER_ID_PATTERN, "x-kind": "user"}
        if self.multiple:
            return {"type": "array", "items": one, "uniqueItems": True}
        return one

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        if error.validator == "uniqueItems":
            return Problem("duplicate", f"{self.title} names a person more than once", subpath)
        if error.validator == "pattern" or (error.validator == "type" and subpath):
            return Problem("type", f"{self.title} must hold user ids", subpath)
        return super().describe(error, subpath)


class DepartmentField(IndexableField):
    """One of the app's departments: the ``department`` attribute of the people who hold a
    role in the app (the value row filters compare with ``$user.department``)."""

    type: Literal["department"] = Field(description="Field type.")
    default_current: bool = Field(
        default=False,
        description="A record created without the field gets the signed-in person's department.",
    )

    expects = "a department (text)"

    def normalise_value(self, value: Any) -> Any:
        return normalise_trimmed(value) or None

    def value_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": 200, "x-kind": "department"}


ColumnSpec: TypeAlias = Annotated[
    TextField
    | TextareaField
    | RichTextField
    | NumberField
    | IntegerField
    | RatingField
    | BooleanField
    | DateField
    | DatetimeField
    | TimeField
    | SelectField
    | MultiselectField
    | EmailField
    | PhoneField
    | UrlField
    | RelationField
    | FileField
    | ImageField
    | SignatureField
    | ComputedField,
    Field(discriminator="type"),
]


class TableField(InputField):
    """Repeating rows of sub-fields ("columns"); stores a list of row objects.

    Column keys are unique within the table (they may repeat a key of the form). A column's
    ``visible_if``, ``formula`` and ``default_expr`` see the row's columns and, beneath them,
    the record's top-level fields.
    """

    type: Literal["table"] = Field(description="Field type.")
    fields: tuple[ColumnSpec, ...] = Field(
        min_length=1, description="The columns: fields of any type except table and section."
    )
    min_rows: int | None = Field(default=None, ge=0, description="Fewest rows.")
    max_rows: int | None = Field(default=None, ge=1, description="Most rows.")

    expects = "a list of rows"

    def definition_issues(self) -> list[DefinitionIssue]:
        issues = _limit_issue(self.min_rows, self.max_rows, "min_rows", "max_rows")
        seen: set[str] = set()
        for index, column in enumerate(self.fields):
            loc: Loc = ("fields", index)
            if column.key in seen:
                issues.append(
                    DefinitionIssue(
                        (*loc, "key"),
                        "duplicate_key",
                        f"column key {column.key!r} appears more than once in the table",
                        column.key,
                    )
                )
            seen.add(column.key)
            for flag in ("unique", "indexed"):
                if getattr(column, flag, False):
                    issues.append(
                        DefinitionIssue(
                            (*loc, flag),
                            "not_supported",
                            f"{flag} is not supported on a table column",
                            True,
                        )
                    )
        return issues

    def column(self, key: str) -> ColumnSpec | None:
        for column in self.fields:
            if column.key == key:
                return column
        return None

    def row_schema(self) -> dict[str, Any]:
        return object_schema(self.fields, lambda column: column.visible_if is None)

    def value_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.row_schema()}
        if self.min_rows:
            schema["minItems"] = self.min_rows
        if self.max_rows is not None:
            schema["maxItems"] = self.max_rows
        return schema

    def normalise(self, value: Any, problems: list[Problem]) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            return value
        rows: list[Any] = []
        for index, row in enumerate(value):
            if not isinstance(row, dict):
                rows.append(row)
                continue
            clean: dict[str, Any] = {}
            for key, cell in row.items():
                column = self.column(key)
                if column is None:
                    clean[key] = cell  # reported as unknown_field by the validator
                    continue
                found: list[Problem] = []
                normalised = column.normalise(cell, found)
                problems.extend(self.row_problem(index, problem, key) for problem in found)
                if normalised is not None:
                    clean[key] = normalised
            rows.append(clean)
        return rows

    def row_problem(self, index: int, problem: Problem, key: str | None = None) -> Problem:
        """A column's problem, relocated into row ``index`` of this table."""
        subpath: tuple[str | int, ...] = (index,) if key is None else (index, key)
        return Problem(
            problem.code,
            f"{self.title}, row {index + 1}: {problem.message}",
            subpath + problem.subpath,
        )

    def check_constraints(self, value: Any) -> list[Problem]:
        if not isinstance(value, list):
            return []
        problems: list[Problem] = []
        for index, row in enumerate(value):
            if not isinstance(row, dict):
                continue
            for column in self.fields:
                if column.key in row:
                    problems.extend(
                        self.row_problem(index, problem, column.key)
                        for problem in column.check_constraints(row[column.key])
                    )
        return problems

    def describe(self, error: Any, subpath: tuple[str | int, ...]) -> Problem:
        keyword = error.validator
        title = self.title
        if not subpath:
            if keyword == "minItems":
                return Problem(
                    "min_rows", f"{title} needs at least {_plural(error.validator_value, 'row')}"
                )
            if keyword == "maxItems":
                return Problem(
                    "max_rows", f"{title} allows at most {_plural(error.validator_value, 'row')}"
                )
            return super().describe(error, subpath)
        index = subpath[0]
        assert isinstance(index, int)
        if len(subpath) == 1:
            if keyword == "additionalProperties":
                allowed = error.schema.get("properties", {})
                unknown = sorted(key for key in error.instance if key not in allowed)
                return Problem(
                    "unknown_field",
                    f"{title}, row {index + 1}: {', '.join(map(repr, unknown))} "
                    f"{'is not a column' if len(unknown) == 1 else 'are not columns'}",
                    (index, unknown[0]) if len(unknown) == 1 else (index,),
                )
            if keyword == "required":
                missing = next(
                    (key for key in error.validator_value if key not in error.instance), ""
                )
                column = self.column(missing)
                name = column.title if column is not None else missing
                return Problem(
                    "required", f"{title}, row {index + 1}: {name} is required", (index, missing)
                )
            return Problem("type", f"{title}, row {index + 1} must be an object", subpath)
        key = subpath[1]
        column = self.column(str(key))
        if column is None:  # pragma: no cover - additionalProperties reports these
            return super().describe(error, subpath)
        inner = column.describe(error, tuple(subpath[2:]))
        return self.row_problem(index, inner, str(key))


def object_schema(
    fields: Iterable[BaseField], always_shown: Callable[[BaseField], bool]
) -> dict[str, Any]:
    """A closed object of the given fields; required are the required ones always shown
    (a conditionally shown field's requirement is checked by the engine, not the schema)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in fields:
        properties[field.key] = property_schema(field)
        if isinstance(field, InputField) and field.required and always_shown(field):
            required.append(field.key)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def property_schema(field: BaseField) -> dict[str, Any]:
    """The JSON Schema of a field as a property of ``data``: value schema plus annotations."""
    schema: dict[str, Any] = {"title": field.title}
    help_text = label_text(field.help) if field.help is not None else ""
    if help_text:
        schema["description"] = help_text
    schema.update(field.value_schema())
    if isinstance(field, InputField):
        if field.default is not None:
            schema["default"] = field.default
        if field.read_only:
            schema["readOnly"] = True
    return schema


FieldSpec: TypeAlias = Annotated[
    TextField
    | TextareaField
    | RichTextField
    | NumberField
    | IntegerField
    | RatingField
    | BooleanField
    | DateField
    | DatetimeField
    | TimeField
    | SelectField
    | MultiselectField
    | EmailField
    | PhoneField
    | UrlField
    | RelationField
    | TableField
    | FileField
    | ImageField
    | SignatureField
    | ComputedField
    | SectionField
    | AutonumberField
    | UserField
    | DepartmentField,
    Field(discriminator="type"),
]
"""Any field of a form: a pydantic discriminated union on ``type``."""

FIELD_TYPES: tuple[str, ...] = (
    "text",
    "textarea",
    "number",
    "integer",
    "boolean",
    "date",
    "datetime",
    "time",
    "select",
    "multiselect",
    "email",
    "phone",
    "url",
    "relation",
    "table",
    "file",
    "image",
    "computed",
    "section",
    "autonumber",
    "user",
    "department",
    "rating",
    "signature",
    "richtext",
)

#: Types stored as another type is, and read as that type wherever values are compared,
#: filtered, sorted, searched or aggregated (``spec.field_types``, the SQL compiler).
STORED_AS: dict[str, str] = {"rating": "integer", "richtext": "textarea", "signature": "image"}

#: Types whose value is one scalar: indexable, sortable, comparable in SQL.
SCALAR_TYPES: frozenset[str] = frozenset(
    {"text", "textarea", "email", "phone", "url", "select", "relation", "date", "datetime",
     "time", "number", "integer", "boolean", "autonumber", "user", "department", "rating",
     "richtext"}
)  # fmt: skip
