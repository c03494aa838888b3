"""Typed OpenAPI: the one generic record API, documented once per form of every installed app.

Records of every form are served by the same generic endpoints (``/api/records/{app}/{form}``
...), so FastAPI's own document can only say that ``data`` is "an object". This module serves
``/openapi.json`` itself: FastAPI's document of the routes (built once per process) plus, for
each form of each installed app,

* components ``{App}{Form}Data`` (a record's ``data`` as read), ``{App}{Form}Create`` and
  ``{App}{Form}Update`` (what a client writes), ``{App}{Form}Record`` (the record envelope)
  and ``{App}{Form}Page`` (a list page), plus ``...CreateBody``/``...UpdateBody`` (the request
  bodies, ``{"data": ...}``);
* the record endpoints under the form's own paths (``/api/records/clinic_crm/patient`` ...),
  each with an ``operationId`` such as ``clinic_crm_patient_create``, a tag per form
  (``clinic_crm.patient``), and the RFC 9457 problem responses.

The three data schemas come from the form engine's ``compile_schema`` (JSON Schema 2020-12,
which OpenAPI 3.1 uses as is) and differ as the record API treats the fields:

* **Data** (read): every field; computed and ``read_only`` fields are ``readOnly``. Nothing
  is ``required``: hidden fields are not stored, ``fields=`` returns only the keys asked for,
  and records written before a field became required lack it.
* **Create**: computed and ``read_only`` fields are left out (the server sets them);
  ``required`` lists the always-shown required fields that have no default; other fields
  also accept ``null`` (no value); datetimes may carry any offset (stored as UTC ``Z``).
* **Update** (a merge): the same fields, none required, each also ``null`` (which clears).
  A table is written whole, so its rows keep their required columns.

**Who sees what.** The document describes what its reader may do, as PostgREST serves its
schema per role. An anonymous caller gets the platform's generic document: the routes, with
no app, form or field named in it. A signed-in caller gets the typed operations of the apps
they hold a role in (all of them for a platform admin), each form's as their grant resolves
(``permissions.policy.resolve``): a form they may not use is absent, an operation their roles
do not allow is absent, a field hidden from them is absent from every schema, and a field
read-only for them is ``readOnly`` and not writable. ``GET /api/apps/{app}/openapi.json``
is the same limited to one app. ``/docs`` (Swagger UI, served from the installed
``swagger-ui-py`` package, nothing from a CDN) fetches the document with the browser's
session cookie, or with the bearer token got through its Authorize button.

**Statuses.** Every operation lists the problem responses it can answer: 401 and 403 where a
credential is read, 400/413/422 where a body is read, 400/422 for parameters, 404 for a path
naming something, and the 409/410/412/429 of the operations that answer them (``EXTRA``).

The generated document is cached by the (app key, revision) pairs of the installed apps and
the caller's grant in each (admin, or the set of roles): each request costs one small query,
the document is rebuilt exactly when an app changes (in this process or another one), and
callers with different grants never share a document. Responses say ``Cache-Control:
private`` and vary on the credential.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import swagger_ui
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from formloom.engines.apps.permissions import FULL_ACCESS, FormAccess
from formloom.engines.forms import (
    BaseField,
    ComputedField,
    DatetimeField,
    FormSpec,
    InputField,
    RelationField,
    TableField,
    TimeField,
    compile_schema,
    label_text,
)
from formloom.platform.apps import repository
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep, current_principal
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform
from formloom.platform.errors import PROBLEM_JSON
from formloom.platform.permissions import guard
from formloom.platform.permissions.policy import resolve

RECORDS = "/api/records"
SCHEMAS = "#/components/schemas/"
RESPONSES = "#/components/responses/"
# A datetime as written: RFC 3339 (`format: date-time`) with any offset, a subset of what the
# API parses (it also takes HH:MM without seconds); stored as UTC `Z` with whole seconds.
DATETIME_INPUT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)

# Problem responses, by status: (component name, description).
PROBLEMS: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "The request is malformed (invalid JSON, filter, sort, cursor or parameter).",
    ),
    "401": (
        "Unauthorized",
        "No credential, or one that does not work (malformed, expired, revoked).",
    ),
    "403": (
        "Forbidden",
        "Signed in, but not allowed (roles, token scope, or a cookie request without its "
        "CSRF token).",
    ),
    "404": ("NotFound", "No such app, form or record (a deleted record is not found)."),
    "409": (
        "Conflict",
        "The request clashes with the current state (the thing exists already, or the app "
        "changed during the write); nothing was changed.",
    ),
    "410": ("Gone", "The link was used up or has expired."),
    "412": ("PreconditionFailed", "If-Match names a version that is no longer current."),
    "413": ("PayloadTooLarge", "The request body is larger than the service accepts."),
    "422": (
        "ValidationFailed",
        "Validation failed; `errors` lists every problem (a duplicate of a unique value is "
        "one, code `unique`).",
    ),
    "429": (
        "TooManyRequests",
        "Too many failed sign-ins; `Retry-After` says when to try again.",
    ),
}

# The record operations: (name, path suffix, method, action needed, problem statuses).
OPERATIONS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("list", "", "get", "read", ("400", "401", "403", "404", "422")),
    ("create", "", "post", "create", ("400", "401", "403", "404", "409", "413", "422")),
    ("query", "/query", "post", "read", ("400", "401", "403", "404", "413", "422")),
    ("read", "/{record_id}", "get", "read", ("401", "403", "404", "422")),
    (
        "update",
        "/{record_id}",
        "patch",
        "update",
        ("400", "401", "403", "404", "409", "412", "413", "422"),
    ),
    ("delete", "/{record_id}", "delete", "delete", ("401", "403", "404", "412", "422")),
    ("history", "/{record_id}/history", "get", "read", ("401", "403", "404", "422")),
)

#: Statuses of FastAPI's own operations beyond what their shape implies (see ``_statuses``):
#: (method, path) -> statuses.
EXTRA: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", "/api/auth/token"): ("401", "429"),
    ("post", "/api/auth/session"): ("401", "429"),
    ("post", "/api/users"): ("409",),
    ("patch", "/api/users/{username}"): ("409",),
    # a token for a person (not a service account)
    ("post", "/api/users/{username}/tokens"): ("409",),
    ("post", "/api/apps/import"): ("409",),
    ("post", "/api/apps/{app}/rollback"): ("409",),
    ("put", "/api/apps/{app}/forms/{form}"): ("409", "412"),
    ("put", "/api/apps/{app}/rules/{rule}"): ("409", "412"),
    ("patch", "/api/apps/{app}/rules/{rule}"): ("409", "412"),
    ("delete", "/api/apps/{app}/rules/{rule}"): ("409", "412"),
    ("put", "/api/apps/{app}/forms/{form}/access"): ("409", "412"),
    **{
        (method, f"/api/apps/{{app}}/{section}/{{key}}"): ("409", "412")
        for section in ("reports", "dashboards", "flows")
        for method in ("put", "delete")
    },
    ("post", "/api/outbox/{message_id}/retry"): ("409",),
    # a shipped form template cannot be deleted
    ("delete", "/api/form-templates/{template_id}"): ("409",),
    ("get", "/api/public/{token}"): ("410",),
    # 403: the submission falls outside the link creator's rows (docs/permissions.md)
    ("post", "/api/public/{token}"): ("403", "410"),
    # flows: an unknown app; a flow already running, a task closed or to be claimed first
    ("get", "/api/flow-instances"): ("404",),
    ("get", "/api/tasks"): ("404",),
    ("post", "/api/flows/{app}/{flow}/start"): ("409",),
    ("post", "/api/flow-instances/{instance_id}/cancel"): ("409",),
    ("post", "/api/flow-instances/{instance_id}/messages"): ("409",),
    ("post", "/api/tasks/{task_id}/claim"): ("409",),
    ("post", "/api/tasks/{task_id}/unclaim"): ("409",),
    ("post", "/api/tasks/{task_id}/complete"): ("409",),
    ("post", "/api/tasks/{task_id}/return"): ("409",),
    ("post", "/api/tasks/{task_id}/delegate"): ("409",),
    ("post", "/api/tasks/{task_id}/signers"): ("409",),
}
#: The security requirement of the typed operations (FastAPI's name for the bearer scheme).
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]

PROBLEM_DETAILS: dict[str, Any] = {
    "type": "object",
    "title": "ProblemDetails",
    "description": "An error, as RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "description": "URI reference naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {
            "type": "array",
            "description": "Every individual problem.",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "description": "Top-level field key."},
                    "path": {"type": "string", "description": "JSON pointer to the value."},
                    "code": {"type": "string", "description": "Machine-readable error code."},
                    "message": {"type": "string"},
                    "in": {"type": "string", "description": "query, path, header or body."},
                    "parameter": {"type": "string", "description": "The query parameter."},
                    "pointer": {"type": "string", "description": "JSON pointer in a filter."},
                },
                "additionalProperties": True,
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}


# -- data schemas ---------------------------------------------------------------------------


def _writable(field: BaseField) -> bool:
    if isinstance(field, ComputedField):
        return False
    return not (isinstance(field, InputField) and field.read_only)


def _defaulted(field: BaseField) -> bool:
    return isinstance(field, InputField) and (
        field.default is not None or field.default_expr is not None
    )


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or ``null``, with the annotations kept on the outside for tools."""
    inner = dict(schema)
    outer: dict[str, Any] = {
        key: inner.pop(key) for key in ("title", "description", "default") if key in inner
    }
    outer["anyOf"] = [inner, {"type": "null"}]
    return outer


def _without_required(schema: dict[str, Any], fields: Iterable[BaseField]) -> dict[str, Any]:
    schema.pop("required", None)
    for field in fields:
        if isinstance(field, TableField):
            _without_required(schema["properties"][field.key]["items"], field.fields)
    return schema


def _input_object(
    fields: Iterable[BaseField], compiled: dict[str, Any], *, requiring: bool
) -> dict[str, Any]:
    """The writable part of a compiled object schema. ``requiring``: keep ``required`` (minus
    fields with a default); every field not required then also accepts ``null``."""
    was_required = set(compiled.get("required", ()))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in fields:
        if not _writable(field):
            continue
        schema = copy.deepcopy(compiled["properties"][field.key])
        if isinstance(field, DatetimeField):
            schema["pattern"] = DATETIME_INPUT_PATTERN
        elif isinstance(field, TableField):
            schema["items"] = _input_object(field.fields, schema["items"], requiring=True)
        if requiring and field.key in was_required and not _defaulted(field):
            required.append(field.key)
        else:
            schema = _nullable(schema)
        properties[field.key] = schema
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        result["required"] = required
    return result


def _adapt(compiled: dict[str, Any], fields: Iterable[BaseField]) -> None:
    """Fit the compiled properties of ``fields`` to OpenAPI readers, in place.

    ``format: time`` is dropped: in JSON Schema it means RFC 3339 ``full-time`` (seconds and
    an offset), which refuses the ``HH:MM`` values a time field holds; the pattern stays.
    A relation without help text says which form its id belongs to."""
    for field in fields:
        schema = compiled["properties"][field.key]
        if isinstance(field, TimeField):
            schema.pop("format", None)
        elif isinstance(field, RelationField):
            schema.setdefault("description", f"The id of a record of the form `{field.target}`.")
        elif isinstance(field, TableField):
            _adapt(schema["items"], field.fields)


def data_schemas(form: FormSpec) -> dict[str, dict[str, Any]]:
    """The ``Data`` (read), ``Create`` and ``Update`` schemas of ``form``'s record data."""
    compiled = copy.deepcopy(compile_schema(form))
    compiled.pop("$schema", None)
    fields = list(form.value_fields())
    _adapt(compiled, fields)
    title = form.title
    described = label_text(form.description) if form.description is not None else ""

    read = _without_required(copy.deepcopy(compiled), fields)
    read["description"] = (
        f"{described + ' ' if described else ''}The data of a {title} record. Keys may be "
        "absent: hidden fields are not stored, and `fields=` returns only the keys asked for."
    )
    create = _input_object(fields, compiled, requiring=True)
    create["title"] = f"{title} (create)"
    create["description"] = (
        f"The data of a new {title} record. Computed and read-only fields are set by the "
        "server; fields shown only under a condition are required only while shown, which "
        "the server checks; null means no value."
    )
    update = _input_object(fields, compiled, requiring=False)
    update["title"] = f"{title} (update)"
    update["description"] = (
        f"The changes to a {title} record, merged onto it: keys left out keep their value, "
        "null clears one, a table is replaced whole."
    )
    return {"Data": read, "Create": create, "Update": update}


def restricted(schemas: dict[str, dict[str, Any]], access: FormAccess) -> dict[str, Any]:
    """``data_schemas`` as one caller sees them: fields hidden from them absent everywhere,
    fields read-only for them ``readOnly`` when read and absent from what they write.
    Variants whose operation the caller may not use are left out."""
    if access.unrestricted:
        return schemas
    hidden, read_only = access.hidden, access.read_only
    result: dict[str, Any] = {}
    for variant, original in schemas.items():
        if (variant == "Create" and not access.allows("create")) or (
            variant == "Update" and not access.allows("update")
        ):
            continue
        schema = copy.deepcopy(original)
        dropped = hidden if variant == "Data" else hidden | read_only
        for key in dropped:
            schema["properties"].pop(key, None)
        if "required" in schema:
            schema["required"] = [key for key in schema["required"] if key not in dropped]
            if not schema["required"]:
                del schema["required"]
        if variant == "Data":
            for key in read_only - hidden:
                if key in schema["properties"]:
                    schema["properties"][key]["readOnly"] = True
        result[variant] = schema
    return result


# -- names ----------------------------------------------------------------------------------


def _pascal(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in key.split("_") if part)


def form_names(
    pairs: Sequence[tuple[str, str]],
    taken_schemas: Iterable[str] = (),
    taken_operations: Iterable[str] = (),
) -> dict[tuple[str, str], tuple[str, str]]:
    """(component prefix, operationId prefix) per (app, form): ``ClinicCrmPatient`` and
    ``clinic_crm_patient``. Keys may run together (``a_b``+``c`` and ``a``+``b_c``); pairs
    whose names would clash with each other or with names already taken get a short digest
    appended, so every name stays unique."""
    schema_suffixes = ("Data", "Create", "Update", "Record", "Page", "CreateBody", "UpdateBody")
    schemas, operations = set(taken_schemas), set(taken_operations)
    pascal = [_pascal(app) + _pascal(form) for app, form in pairs]
    snake = [f"{app}_{form}" for app, form in pairs]
    names: dict[tuple[str, str], tuple[str, str]] = {}
    for index, (app, form) in enumerate(pairs):
        component, operation = pascal[index], snake[index]
        if (
            pascal.count(component) > 1
            or snake.count(operation) > 1
            or any(component + suffix in schemas for suffix in schema_suffixes)
            or any(f"{operation}_{verb}" in operations for verb, *_ in OPERATIONS)
        ):
            tag = hashlib.sha1(f"{app}/{form}".encode()).hexdigest()[:8]
            component, operation = f"{component}_{tag}", f"{operation}_{tag}"
        names[(app, form)] = (component, operation)
    return names


# -- the document ---------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


def _problems(statuses: Iterable[str]) -> dict[str, Any]:
    return {status: {"$ref": RESPONSES + PROBLEMS[status][0]} for status in statuses}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


IF_MATCH = _header(
    "If-Match",
    'The ETag of the version last read, e.g. "3": if the record has changed since, '
    "the request fails with 412 and changes nothing. Without it the write always applies.",
)
IF_NONE_MATCH = _header(
    "If-None-Match", "ETags already held; when the current one is among them, 304."
)
ETAG = {"description": 'The record\'s version, e.g. "3".', "schema": {"type": "string"}}
RECORD_ID = {
    "name": "record_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The record's id.",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _record_schemas(
    app: str, form: FormSpec, prefix: str, access: FormAccess = FULL_ACCESS
) -> dict[str, dict[str, Any]]:
    title = form.title
    variants = restricted(data_schemas(form), access)
    schemas = {prefix + variant: schema for variant, schema in variants.items()}
    schemas[prefix + "Record"] = {
        "type": "object",
        "title": f"{title} record",
        "properties": {
            "id": {"type": "string", "description": "The record's id."},
            "app": {"type": "string", "const": app},
            "form": {"type": "string", "const": form.key},
            "version": {"type": "integer", "description": "Increases on every write (ETag)."},
            "form_version": {
                "type": "integer",
                "description": "The app revision the record was last written with.",
            },
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"},
            "updated_at": {"type": "string", "format": "date-time"},
            "updated_by": {"type": "string"},
            "data": _ref(prefix + "Data"),
        },
        "required": [
            "id",
            "app",
            "form",
            "version",
            "form_version",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
            "data",
        ],
    }
    schemas[prefix + "Page"] = {
        "type": "object",
        "title": f"Page of {title} records",
        "properties": {
            "items": {"type": "array", "items": _ref(prefix + "Record")},
            "next_cursor": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
            "count": {
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "description": "All matching records, when asked with `count`.",
            },
        },
        "required": ["items", "next_cursor"],
    }
    for variant in ("Create", "Update"):
        if variant not in variants:
            continue
        schemas[prefix + variant + "Body"] = {
            "type": "object",
            "title": f"{title} {variant.lower()} request",
            "properties": {"data": _ref(prefix + variant)},
            "required": ["data"],
            "additionalProperties": False,
        }
    return schemas


def _operations(
    installed: InstalledApp,
    form: FormSpec,
    prefix: str,
    operation_prefix: str,
    list_parameters: list[dict[str, Any]],
    access: FormAccess = FULL_ACCESS,
) -> dict[str, dict[str, Any]]:
    """The path items of one form's record endpoints the caller may use, keyed by path."""
    title = form.title
    app_title = label_text(installed.spec.label) or installed.key
    tag = f"{installed.key}.{form.key}"
    record = _json(_ref(prefix + "Record"))
    page = _json(_ref(prefix + "Page"))
    bodies = {
        "create": {"required": True, **_json(_ref(prefix + "CreateBody"))},
        "update": {"required": True, **_json(_ref(prefix + "UpdateBody"))},
        "query": {"required": True, **_json(_ref("QueryBody"))},
    }
    details: dict[str, tuple[str, dict[str, Any]]] = {
        "list": (
            f"List {title} records",
            {
                "parameters": copy.deepcopy(list_parameters),
                "responses": {"200": {"description": f"A page of {title} records.", **page}},
            },
        ),
        "create": (
            f"Create a {title} record",
            {
                "responses": {
                    "201": {
                        "description": f"The new {title} record.",
                        "headers": {
                            "ETag": ETAG,
                            "Location": {
                                "description": "The new record's URL.",
                                "schema": {"type": "string"},
                            },
                        },
                        **record,
                    }
                }
            },
        ),
        "query": (
            f"Query {title} records (list parameters as a JSON body)",
            {"responses": {"200": {"description": f"A page of {title} records.", **page}}},
        ),
        "read": (
            f"Read a {title} record",
            {
                "parameters": [RECORD_ID, IF_NONE_MATCH],
                "responses": {
                    "200": {
                        "description": f"The {title} record.",
                        "headers": {"ETag": ETAG},
                        **record,
                    },
                    "304": {"description": "Not modified.", "headers": {"ETag": ETAG}},
                },
            },
        ),
        "update": (
            f"Update a {title} record",
            {
                "parameters": [RECORD_ID, IF_MATCH],
                "responses": {
                    "200": {
                        "description": f"The {title} record after the update.",
                        "headers": {"ETag": ETAG},
                        **record,
                    }
                },
            },
        ),
        "delete": (
            f"Delete a {title} record",
            {
                "parameters": [RECORD_ID, IF_MATCH],
                "responses": {"204": {"description": "Deleted (its history is kept)."}},
            },
        ),
        "history": (
            f"History of a {title} record",
            {
                "parameters": [RECORD_ID],
                "responses": {
                    "200": {
                        "description": "Every version, oldest first.",
                        **_json({"type": "array", "items": _ref("HistoryEntry")}),
                    }
                },
            },
        ),
    }
    paths: dict[str, dict[str, Any]] = {}
    base = f"{RECORDS}/{installed.key}/{form.key}"
    for name, suffix, method, action, statuses in OPERATIONS:
        if not access.allows(action):
            continue
        summary, operation = details[name]
        operation = {
            "tags": [tag],
            "summary": summary,
            "description": f"{summary} (form `{form.key}` of the app {app_title}).",
            "operationId": f"{operation_prefix}_{name}",
            "security": SECURITY,
            **operation,
        }
        if name in bodies:
            operation["requestBody"] = bodies[name]
        operation["responses"].update(_problems(statuses))
        paths.setdefault(base + suffix, {})[method] = operation
    return paths


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[str]:
    """The problem statuses one of FastAPI's operations can answer, from its shape: a
    credential read (401/403), a body (400/413/422), parameters (400/422), a path naming
    something (404), plus ``EXTRA``."""
    statuses: set[str] = set(EXTRA.get((method, path), ()))
    if not path.startswith("/api/"):
        return statuses
    parameters = operation.get("parameters", [])
    if operation.get("security") or path.startswith("/api/auth/"):
        statuses |= {"401", "403"}
    if "requestBody" in operation:
        statuses |= {"400", "413", "422"}
    if parameters:
        statuses |= {"400", "422"}
    if any(parameter.get("in") == "path" for parameter in parameters):
        statuses.add("404")
    return statuses


def _generic(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Document FastAPI's own operations as the service answers them: request validation
    errors are problem details (not FastAPI's default shape), and every operation lists its
    problem responses (``_statuses``). Returns the list endpoint's query parameters."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"$ref": RESPONSES + PROBLEMS["422"][0]}
            for status in sorted(_statuses(path, method, operation)):
                responses.setdefault(status, {"$ref": RESPONSES + PROBLEMS[status][0]})
    generic = f"{RECORDS}/{{app}}/{{form}}"
    for name, suffix, method, _action, statuses in OPERATIONS:
        operation = document.get("paths", {}).get(generic + suffix, {}).get(method)
        if operation is None:
            continue
        operation["description"] = (
            "Generic: serves every form of every app, with `data` untyped. Each installed "
            f"form also has this operation typed, as `{{app}}_{{form}}_{name}`."
        )
        operation["responses"].update(_problems(statuses))
    # FastAPI's validation error schemas are unused now (the second is used by the first).
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f'"{SCHEMAS}{name}"' not in json.dumps(document):
            del schemas[name]
    list_operation = document.get("paths", {}).get(generic, {}).get("get", {})
    return [p for p in list_operation.get("parameters", []) if p.get("in") != "path"]


#: How one caller may use a form of an installed app (``permissions.policy.resolve``).
AccessOf = Callable[[InstalledApp, str], FormAccess]


def build_document(
    base: dict[str, Any], apps: Sequence[InstalledApp], access: AccessOf | None = None
) -> dict[str, Any]:
    """``base`` (FastAPI's document of the routes, not changed) with every form of ``apps``,
    as ``access`` lets its caller use them (everything when it is None): a form the caller
    may not use at all is left out."""
    document = copy.deepcopy(base)
    list_parameters = _generic(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ProblemDetails"] = PROBLEM_DETAILS
    responses = components.setdefault("responses", {})
    for _status, (name, description) in PROBLEMS.items():
        responses[name] = {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": _ref("ProblemDetails")}},
        }
    paths = document.setdefault("paths", {})
    visible: list[tuple[InstalledApp, FormSpec, FormAccess]] = []
    for installed in apps:
        for form in installed.forms.values():
            granted = FULL_ACCESS if access is None else access(installed, form.key)
            if granted.actions:
                visible.append((installed, form, granted))
    pairs = [(installed.key, form.key) for installed, form, _ in visible]
    operation_ids = [op.get("operationId") for item in paths.values() for op in item.values()]
    names = form_names(pairs, schemas, operation_ids)
    tags = document.setdefault("tags", [])
    if not any(tag.get("name") == "records" for tag in tags):
        tags.append(
            {
                "name": "records",
                "description": "The generic record API; every form's typed operations are "
                "under its own tag.",
            }
        )
    for installed, form, granted in visible:
        app_title = label_text(installed.spec.label) or installed.key
        prefix, operation_prefix = names[(installed.key, form.key)]
        schemas.update(_record_schemas(installed.key, form, prefix, granted))
        paths.update(
            _operations(installed, form, prefix, operation_prefix, list_parameters, granted)
        )
        description = f"Records of the form {form.title} of the app {app_title}."
        if form.description is not None:
            description += " " + label_text(form.description)
        tags.append({"name": f"{installed.key}.{form.key}", "description": description})
    shown_apps = {installed.key: installed.version for installed, _, _ in visible}
    document.setdefault("info", {})["x-formloom-apps"] = shown_apps
    return document


# -- serving --------------------------------------------------------------------------------


async def installed_revisions(session: AsyncSession) -> tuple[tuple[str, int], ...]:
    """(key, revision) of every installed app: the cache key, one small query."""
    return await repository.revisions(session)


def grant_of(principal: Principal, app: str) -> str | tuple[str, ...] | None:
    """What the document of ``app`` depends on for ``principal``: ``"admin"``, the roles
    held, or None (the app is not theirs). ``resolve`` reads nothing else that shows in the
    document (row filters and ``$user`` attributes limit rows, not fields or operations)."""
    if not principal.authenticated or not principal.may_use_app(app):
        return None
    if principal.is_admin:
        return "admin"
    roles = principal.roles_in(app)
    return tuple(sorted(roles)) if roles else None


#: Documents kept per process: one per distinct (revisions, grants, app) in use.
CACHE_SIZE = 64
#: A document differs by caller: never stored by a shared cache, never served to another.
PRIVATE = {"Cache-Control": "private, no-cache", "Vary": "Authorization, Cookie"}


class OpenAPIDocument:
    """The served document of one application, per caller's grant, regenerated when an
    installed app changes."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._cached: OrderedDict[Any, bytes] = OrderedDict()

    async def render(
        self, request: Request, principal: Principal, only: str | None = None
    ) -> bytes:
        """The document for ``principal``; with ``only``, limited to that app (which the
        caller must hold: checked by the caller of this method)."""
        platform: Platform = request.app.state.platform
        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        async with platform.db.transaction(write=False) as session:
            revisions = await installed_revisions(session)
            grants = tuple(
                (app, revision, grant)
                for app, revision in revisions
                if (only is None or app == only) and (grant := grant_of(principal, app)) is not None
            )
            key = (grants, root_path, only)
            body = self._cached.get(key)
            if body is not None:
                self._cached.move_to_end(key)
                return body
            apps = [
                await platform.catalog.get_version(session, app, revision)
                for app, revision, _grant in grants
            ]

        def access(installed: InstalledApp, form: str) -> FormAccess:
            return resolve(installed.spec.permissions, principal, installed.key, form)

        # FastAPI builds its own document once and keeps it (app.openapi_schema).
        document = build_document(self._app.openapi(), apps, access)
        if root_path and self._app.root_path_in_servers:
            servers = document.get("servers", [])
            if root_path not in [server.get("url") for server in servers]:
                document["servers"] = [{"url": root_path}, *servers]
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        self._cached[key] = body
        while len(self._cached) > CACHE_SIZE:
            self._cached.popitem(last=False)
        return body

    def forget(self) -> None:
        """Drop every cached document; the next request builds its own."""
        self._cached.clear()


def forget_documents(app: FastAPI) -> None:
    """Empty the cache of the documents :func:`install` serves for ``app`` (nothing to do
    if it serves none). A process never needs it: an app's revision only grows. A test
    suite that empties the database between uses of one ``app`` installs a different
    'revision 1' of the same app again, and calls it."""
    document: OpenAPIDocument | None = getattr(app.state, "openapi_document", None)
    if document is not None:
        document.forget()


# -- /docs ----------------------------------------------------------------------------------

#: Swagger UI's files, as the swagger-ui-py package ships them (no CDN).
SWAGGER_UI = Path(swagger_ui.__file__).parent / "static"
DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API</title>
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script>
(() => {{
  const root = {root_json};
  const csrfCookie = {csrf_json};
  const bearer = () => {{
    const ui = window.ui;
    const token = ui && ui.authSelectors.authorized().getIn(["bearer", "token", "access_token"]);
    return token ? "Bearer " + token : null;
  }};
  // After Authorize (or Logout) fetch the document again: it is the caller's own. The
  // password flow ends in authorizeOauth2, an API key or HTTP scheme in authorize.
  const refetching = (action, system) => (payload) => {{
    const done = action(payload);
    setTimeout(() => system.specActions.download(root + "/openapi.json"), 0);
    return done;
  }};
  const reloadOnAuth = () => ({{
    statePlugins: {{ auth: {{ wrapActions: {{
      authorize: refetching,
      authorizeOauth2: refetching,
      logout: refetching,
    }} }} }},
  }});
  window.ui = SwaggerUIBundle({{
    url: root + "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [reloadOnAuth],
    oauth2RedirectUrl: window.location.origin + root + "/docs/oauth2-redirect",
    requestInterceptor: (request) => {{
      const authorization = bearer();
      if (request.loadSpec && authorization) {{
        request.headers.Authorization = authorization;
      }}
      // A request on the session cookie that changes something needs its CSRF token.
      const method = (request.method || "GET").toUpperCase();
      const hasAuthorization = Object.keys(request.headers || {{}})
        .some((name) => name.toLowerCase() === "authorization");
      if (!hasAuthorization && !["GET", "HEAD", "OPTIONS"].includes(method)) {{
        const found = document.cookie.split("; ").find((c) => c.startsWith(csrfCookie + "="));
        if (found) request.headers["X-CSRF-Token"] = decodeURIComponent(found.split("=")[1]);
      }}
      return request;
    }},
  }});
}})();
</script>
</body>
</html>
"""


def docs_page(title: str, root: str, csrf_cookie: str) -> str:
    return DOCS_PAGE.format(
        title=html.escape(title),
        root=html.escape(root),
        root_json=json.dumps(root).replace("<", "\\u003c"),
        csrf_json=json.dumps(csrf_cookie).replace("<", "\\u003c"),
    )


# -- installing -----------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Serve the typed document at the app's ``openapi_url`` in place of FastAPI's own,
    ``GET /api/apps/{app}/openapi.json``, and ``/docs`` from local files. Call once, when
    the routers are included."""
    path = app.openapi_url
    if path is None:
        return
    document = OpenAPIDocument(app)
    app.state.openapi_document = document
    replaced = {path, "/docs", "/docs/oauth2-redirect", "/redoc"}
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path in replaced)
    ]

    async def openapi_json(request: Request) -> Response:
        principal = await current_principal(request)
        body = await document.render(request, principal)
        return Response(body, media_type="application/json", headers=PRIVATE)

    async def swagger_page(request: Request) -> HTMLResponse:
        platform: Platform = request.app.state.platform
        root = str(request.scope.get("root_path", "")).rstrip("/")
        page = docs_page(app.title, root, platform.settings.csrf_cookie)
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    for url, endpoint in (
        (path, openapi_json),
        ("/docs", swagger_page),
        ("/docs/oauth2-redirect", oauth2_redirect),
    ):
        app.add_route(url, endpoint, methods=["GET"], include_in_schema=False)
    app.router.routes.append(
        Mount("/docs/assets", app=StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    )

    @app.get(
        "/api/apps/{app}/openapi.json",
        tags=["apps"],
        summary="The typed OpenAPI document of one app",
        response_class=Response,
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def app_openapi(request: Request, app: str, principal: PrincipalDep) -> Response:
        """The document of ``/openapi.json`` limited to one app: its forms' typed
        operations as the caller's roles let them use them."""
        guard.require_app(principal, app)
        platform: Platform = request.app.state.platform
        async with platform.db.transaction(write=False) as session:
            await platform.catalog.get(session, app)
        guard.require_member(principal, app)
        body = await document.render(request, principal, only=app)
        return Response(body, media_type="application/json", headers=PRIVATE)
