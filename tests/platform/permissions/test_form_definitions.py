"""A form's definition and JSON Schema, as a member reads them, leave out the fields hidden
from them — as their records and their OpenAPI document do (issue 19, item 9)."""

from __future__ import annotations

import httpx
import pytest

from tests.platform.permissions.helpers import as_user, make_user
from tests.platform.permissions.test_clinic_matrix import APP, DEFINITION, FORMS, Expect


@pytest.mark.parametrize("role", ["nurse", "front_desk", "manager"])
async def test_definitions_and_schemas_leave_out_hidden_fields(
    client: httpx.AsyncClient, role: str
) -> None:
    install = await client.post("/api/apps/import", json=DEFINITION)
    assert install.status_code == 201, install.text
    user = {"department": "surgery"}
    token = await make_user(client, f"defs_{role}", roles={APP: [role]}, attributes=user)
    hidden_somewhere = False
    async with as_user(client, token) as member:
        for form in FORMS:
            hidden = Expect(role, form, user).hidden()
            every = {
                f["key"] for f in next(x for x in DEFINITION["forms"] if x["key"] == form)["fields"]
            }
            definition = await member.get(f"/api/apps/{APP}/forms/{form}")
            assert definition.status_code == 200, definition.text
            keys = {f["key"] for f in definition.json()["form"]["fields"]}
            assert keys == every - hidden, form
            schema = await member.get(f"/api/apps/{APP}/forms/{form}/schema")
            assert schema.status_code == 200, schema.text
            properties = set(schema.json()["properties"])
            assert not properties & hidden, form
            assert properties, form
            hidden_somewhere = hidden_somewhere or bool(hidden)
    assert hidden_somewhere  # the role hides something, or the test proves nothing
    # a platform admin reads everything
    full = await client.get(f"/api/apps/{APP}/forms/patient/schema")
    assert "id_number" in full.json()["properties"]
