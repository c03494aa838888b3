"""The form engine: form definitions as data, compiled to JSON Schema and validated.

A form is JSON inside an app definition (see docs/forms.md). :class:`FormSpec` parses and
checks it (an immutable pydantic model; every field type its own model, discriminated on
``type``). :func:`compile_schema` gives the JSON Schema (2020-12) of a record's ``data``;
:func:`prepare` turns a client's input into clean data to store — merging onto the existing
record, applying defaults, normalising values, resolving visibility and computed fields, and
validating with a ``jsonschema`` validator compiled once per form version — or raises
:class:`RecordInvalid` listing every problem as a :class:`FieldError`.

The engine is pure: no web framework, no database, no clock (``now`` is passed in).
"""

from formloom.engines.forms.compiled import CompiledForm, compiled
from formloom.engines.forms.errors import FieldError, RecordInvalid
from formloom.engines.forms.fields import (
    FIELD_TYPES,
    SCALAR_TYPES,
    AutonumberField,
    BaseField,
    BooleanField,
    ColumnSpec,
    ComputedField,
    DateField,
    DatetimeField,
    DepartmentField,
    EmailField,
    FieldSpec,
    FileField,
    ImageField,
    InputField,
    IntegerField,
    MultiselectField,
    NumberField,
    Option,
    PhoneField,
    RatingField,
    RelationField,
    RichTextField,
    SectionField,
    SelectField,
    SignatureField,
    TableField,
    TextareaField,
    TextField,
    TimeField,
    UrlField,
    UserField,
)
from formloom.engines.forms.labels import Label, label_text
from formloom.engines.forms.record import (
    changed_fields,
    prepare,
    relation_values,
    title_field,
    title_of,
)
from formloom.engines.forms.schema import compile_schema
from formloom.engines.forms.spec import (
    RESERVED_KEYS,
    FormSpec,
    definition_errors,
    field_types,
    indexed_fields,
    required_left_out,
    unique_fields,
)

__all__ = [
    "FIELD_TYPES",
    "SCALAR_TYPES",
    "RESERVED_KEYS",
    "AutonumberField",
    "BaseField",
    "BooleanField",
    "ColumnSpec",
    "CompiledForm",
    "ComputedField",
    "DateField",
    "DatetimeField",
    "DepartmentField",
    "EmailField",
    "FieldError",
    "FieldSpec",
    "FileField",
    "FormSpec",
    "ImageField",
    "InputField",
    "IntegerField",
    "Label",
    "MultiselectField",
    "NumberField",
    "Option",
    "PhoneField",
    "RatingField",
    "RecordInvalid",
    "RelationField",
    "RichTextField",
    "SectionField",
    "SelectField",
    "SignatureField",
    "TableField",
    "TextField",
    "TextareaField",
    "TimeField",
    "UrlField",
    "UserField",
    "changed_fields",
    "compile_schema",
    "compiled",
    "definition_errors",
    "field_types",
    "indexed_fields",
    "label_text",
    "prepare",
    "relation_values",
    "required_left_out",
    "title_field",
    "title_of",
    "unique_fields",
]
