"""Uploaded files: storing one for a file/image field, and deciding who may download one.

An upload is made for one field of one form (``POST /api/files/{app}/{form}/{field}``), by
someone who may create or change that form's records and write that field. It answers with
the reference a record stores in the field, ``{id, name, content_type, size}``; the record
write then validates the reference like any value (type, ``accept``, ``max_size``).

Who may download (``GET /api/files/{id}``):

* anyone who may read a record that refers to the file, in a field they can see — the
  request names the record (``?record=<id>``), so the check is one record read through the
  record service (its row filters and hidden fields apply) and never a search;
* the uploader, as long as no live record refers to the file yet (the preview in a form
  being filled in).

Everyone else gets the same 404 as for a file that does not exist. File ids are 128 random
bits, so they cannot be guessed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import FieldError, RecordInvalid
from formloom.engines.forms.fields import FileField, ImageField, SignatureField, TableField
from formloom.engines.forms.values import human_size
from formloom.platform.apps.service import AppCatalog
from formloom.platform.audit.log import audit
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import NotFound, PayloadTooLarge, shown
from formloom.platform.models import Record
from formloom.platform.models.file import StoredFile
from formloom.platform.permissions import guard
from formloom.platform.records.repository import live
from formloom.platform.records.service import RecordService

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
CHUNK = 64 * 1024


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Upload:
    filename: str | None
    content_type: str | None
    stream: Readable


def reference(row: StoredFile) -> dict[str, Any]:
    """The value a file/image field stores for this file."""
    return {"id": row.id, "name": row.name, "content_type": row.content_type, "size": row.size}


def clean_name(name: str | None) -> str:
    """The file's own name, without a client's folders or control characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    base = base.strip(". ") or "file"
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) < 20 else base[:200]
    return base


def clean_type(content_type: str | None) -> str:
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value if MIME.match(value) else "application/octet-stream"


def accepts(accept: tuple[str, ...], content_type: str) -> bool:
    if not accept or "*/*" in accept:
        return True
    major = content_type.split("/", 1)[0]
    return any(item == content_type or item == f"{major}/*" for item in accept)


def _field_of(spec: Any, path: str) -> FileField | ImageField | SignatureField | None:
    """The file/image field at ``path``: a top-level key or ``table.column``."""
    top, _, column = path.partition(".")
    field = spec.field(top)
    if column and isinstance(field, TableField):
        field = field.column(column)
    elif column:
        return None
    return field if isinstance(field, FileField | ImageField | SignatureField) else None


def _refers(value: Any, file_id: str) -> bool:
    if isinstance(value, dict):
        if value.get("id") == file_id and "content_type" in value:
            return True
        return any(_refers(item, file_id) for item in value.values())
    if isinstance(value, list):
        return any(_refers(item, file_id) for item in value)
    return False


class FileService:
    def __init__(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        *,
        principal: Principal,
        now: datetime,
        max_bytes: int,
    ) -> None:
        self.session = session
        self.principal = principal
        self.now = now
        self.max_bytes = max_bytes
        self.records = RecordService(session, catalog, principal=principal, now=now)

    async def store(self, app: str, form: str, field_path: str, upload: Upload) -> dict[str, Any]:
        installed, spec = await self.records.load_form(app, form)
        access = self.records.access(installed, form)
        if not (access.allows("create") or access.allows("update")):
            self.records.allowed(installed, form, "create")  # raises the audited 403
        field = _field_of(spec, field_path)
        top = field_path.split(".", 1)[0]
        if field is None or top in access.hidden:
            raise NotFound(f"Form '{form}' has no file or image field '{shown(field_path)}'.")
        if top in access.read_only or field.read_only:
            raise _invalid(field_path, "read_only", f"{field.title} is read-only for your role.")
        name = clean_name(upload.filename)
        content_type = clean_type(upload.content_type)
        accept = field.effective_accept
        if not accepts(accept, content_type):
            raise _invalid(
                field_path,
                "file_type",
                f"{field.title} must be a file of type {', '.join(accept)} (got {content_type}).",
            )
        limit = min(self.max_bytes, field.max_size or self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        while chunk := await upload.stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                message = f"{field.title} must be at most {_human(limit)}."
                if limit == self.max_bytes:
                    raise PayloadTooLarge(
                        message, errors=[_error(field_path, "file_size", message)]
                    )
                raise _invalid(field_path, "file_size", message)
            chunks.append(chunk)
        content = b"".join(chunks)
        row = StoredFile(
            id=secrets.token_hex(16),
            app=app,
            form=form,
            field=field_path,
            name=name,
            content_type=content_type,
            size=size,
            sha256=hashlib.sha256(content).hexdigest(),
            content=content,
            created_at=self.now,
            created_by=self.principal.username,
        )
        self.session.add(row)
        audit(
            self.session,
            self.principal,
            "file.upload",
            at=self.now,
            app=app,
            form=form,
            detail={"file": row.id, "field": field_path, "size": size, "type": content_type},
        )
        await self.session.flush()
        return reference(row)

    async def fetch(self, file_id: str, record_id: str | None) -> StoredFile:
        """The file, if this caller may download it (else the 404 of a missing file)."""
        missing = NotFound(f"No file with id '{shown(file_id)}'.")
        guard.require_app(self.principal, None)
        if not FILE_ID.match(file_id):
            raise missing
        row = await self.session.get(StoredFile, file_id)
        if row is None or not self.principal.may_use_app(row.app):
            raise missing
        if record_id is not None:
            try:
                record = await self.records.get(row.app, row.form, record_id)
            except NotFound:
                raise missing from None
            top = row.field.split(".", 1)[0]
            data = self.records.view(record)["data"]
            if top in data and _refers(data[top], row.id):
                return row
            raise missing
        if row.created_by == self.principal.username and not await self._referenced(row):
            return row
        raise missing

    async def _referenced(self, row: StoredFile) -> bool:
        """Whether a live record of the file's form mentions its id (ids are random hex,
        so a text search of the JSON cannot match anything else)."""
        text = cast(Record.data, String)
        query = (
            select(Record.id)
            .where(*live(row.app, row.form), text.contains(row.id, autoescape=True))
            .limit(1)
        )
        return (await self.session.execute(query)).first() is not None


def _error(path: str, code: str, message: str) -> dict[str, str]:
    return {"field": path, "path": "/file", "code": code, "message": message}


def _invalid(path: str, code: str, message: str) -> RecordInvalid:
    top = path.split(".", 1)[0]
    return RecordInvalid([FieldError(field=top, path="/file", code=code, message=message)])


def _human(size: int) -> str:
    return human_size(size)
