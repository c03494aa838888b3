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

The generated document is cached by the (app key, revision) pairs of the installed apps: each
request costs one small query, and the document is rebuilt exactly when an app changes (in
this process or another one).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import Route

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
from formloom.platform.deps import Platform
from formloom.platform.errors import PROBLEM_JSON

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
    "400": ("BadRequest", "The request is malformed (invalid JSON, filter, sort or cursor)."),
    "404": ("NotFound", "No such app, form or record (a deleted record is not found)."),
    "409": ("Conflict", "A concurrent write got there first (a unique value); try again."),
    "412": ("PreconditionFailed", "If-Match names a version that is no longer current."),
    "413": ("PayloadTooLarge", "The request body is larger than the service accepts."),
    "422": ("ValidationFailed", "Validation failed; `errors` lists every problem."),
}

# The record operations: (name, path suffix, method, problem statuses).
OPERATIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("list", "", "get", ("400", "404", "422")),
    ("create", "", "post", ("400", "404", "409", "413", "422")),
    ("query", "/query", "post", ("400", "404", "413", "422")),
    ("read", "/{record_id}", "get", ("404",)),
    ("update", "/{record_id}", "patch", ("400", "404", "409", "412", "413", "422")),
    ("delete", "/{record_id}", "delete", ("404", "412")),
    ("history", "/{record_id}/history", "get", ("404",)),
)

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


def _record_schemas(app: str, form: FormSpec, prefix: str) -> dict[str, dict[str, Any]]:
    title = form.title
    schemas = {prefix + variant: schema for variant, schema in data_schemas(form).items()}
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
) -> dict[str, dict[str, Any]]:
    """The path items of one form's record endpoints, keyed by path."""
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
    for name, suffix, method, statuses in OPERATIONS:
        summary, operation = details[name]
        operation = {
            "tags": [tag],
            "summary": summary,
            "description": f"{summary} (form `{form.key}` of the app {app_title}).",
            "operationId": f"{operation_prefix}_{name}",
            **operation,
        }
        if name in bodies:
            operation["requestBody"] = bodies[name]
        operation["responses"].update(_problems(statuses))
        paths.setdefault(base + suffix, {})[method] = operation
    return paths


def _generic(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Document FastAPI's own operations as the service answers them: request validation
    errors are problem details (not FastAPI's default shape), and the generic record
    endpoints list their problem responses. Returns the list endpoint's query parameters."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {"$ref": RESPONSES + PROBLEMS["422"][0]}
    generic = f"{RECORDS}/{{app}}/{{form}}"
    for name, suffix, method, statuses in OPERATIONS:
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


def build_document(base: dict[str, Any], apps: Sequence[InstalledApp]) -> dict[str, Any]:
    """``base`` (FastAPI's document of the routes, not changed) with every form of ``apps``."""
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
    pairs = [(installed.key, key) for installed in apps for key in installed.forms]
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
    for installed in apps:
        app_title = label_text(installed.spec.label) or installed.key
        for form in installed.forms.values():
            prefix, operation_prefix = names[(installed.key, form.key)]
            schemas.update(_record_schemas(installed.key, form, prefix))
            paths.update(_operations(installed, form, prefix, operation_prefix, list_parameters))
            description = f"Records of the form {form.title} of the app {app_title}."
            if form.description is not None:
                description += " " + label_text(form.description)
            tags.append({"name": f"{installed.key}.{form.key}", "description": description})
    document.setdefault("info", {})["x-formloom-apps"] = {
        installed.key: installed.version for installed in apps
    }
    return document


# -- serving --------------------------------------------------------------------------------


async def installed_revisions(session: AsyncSession) -> tuple[tuple[str, int], ...]:
    """(key, revision) of every installed app: the cache key, one small query."""
    return await repository.revisions(session)


class OpenAPIDocument:
    """The served document of one application, regenerated when an installed app changes."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._cached: tuple[Any, bytes] | None = None

    async def render(self, request: Request) -> bytes:
        platform: Platform = request.app.state.platform
        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        async with platform.db.transaction(write=False) as session:
            revisions = await installed_revisions(session)
            key = (revisions, root_path)
            cached = self._cached
            if cached is not None and cached[0] == key:
                return cached[1]
            apps = [
                await platform.catalog.get_version(session, app, revision)
                for app, revision in revisions
            ]
        # FastAPI builds its own document once and keeps it (app.openapi_schema).
        document = build_document(self._app.openapi(), apps)
        if root_path and self._app.root_path_in_servers:
            servers = document.get("servers", [])
            if root_path not in [server.get("url") for server in servers]:
                document["servers"] = [{"url": root_path}, *servers]
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        self._cached = (key, body)
        return body


def install(app: FastAPI) -> None:
    """Serve the typed document at the app's ``openapi_url`` in place of FastAPI's own
    (which /docs keeps fetching). Call once, when the routers are included."""
    path = app.openapi_url
    if path is None:
        return
    document = OpenAPIDocument(app)
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path == path)
    ]

    async def openapi_json(request: Request) -> Response:
        return Response(await document.render(request), media_type="application/json")

    app.add_route(path, openapi_json, include_in_schema=False)
