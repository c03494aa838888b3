"""The file API: upload a file for a file/image field, download one."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Response, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.files.service import FileService, Upload

router = APIRouter(prefix="/api/files", tags=["files"])

#: Types a browser may show inline; anything else (HTML, SVG, scripts) is a download only.
INLINE = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "application/pdf"}
)


def _service(p: Platform, session: AsyncSession, who: Principal) -> FileService:
    return FileService(
        session,
        p.catalog,
        principal=who,
        now=p.clock.now(),
        max_bytes=p.settings.max_file_bytes,
    )


@router.post("/{app}/{form}/{field}", status_code=201)
async def upload_file(
    app: str,
    form: str,
    field: str,
    p: PlatformDep,
    who: PrincipalDep,
    file: Annotated[UploadFile, File(description="The file (multipart/form-data part `file`)")],
) -> dict[str, object]:
    """Store a file for ``field`` (``table.column`` for a column of a table) and answer
    with the reference to put in the record: ``{id, name, content_type, size}``."""
    async with p.db.transaction() as session:
        return await _service(p, session, who).store(
            app, form, field, Upload(file.filename, file.content_type, file)
        )


@router.get("/{file_id}")
async def download_file(
    file_id: str,
    p: PlatformDep,
    who: PrincipalDep,
    record: Annotated[
        str | None, Query(description="A record whose field refers to the file")
    ] = None,
) -> Response:
    async with p.db.transaction(write=False) as session:
        service = _service(p, session, who)
        row = await service.fetch(file_id, record)
    inline = row.content_type in INLINE
    disposition = "inline" if inline else "attachment"
    ascii_name = row.name.encode("ascii", "ignore").decode().replace('"', "") or "file"
    return Response(
        row.content,
        media_type=row.content_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": f'{disposition}; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(row.name, safe='')}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=300",
        },
    )
