"""The fast pre-check must never accept a value jsonschema refuses — for any JSON value.

Generated values (arbitrary JSON, plus strings shaped like the formats the schemas use) are
run through both; the fast check may be stricter, never looser.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from formloom.engines.forms import compile_schema
from formloom.engines.forms.fastcheck import compile_check
from tests.engines.forms.test_schema import _property_schemas

FORMAT_LIKE = st.one_of(
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}\Z"),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z"),
    st.from_regex(r"\A\d{2}:\d{2}(:\d{2})?\Z"),
    st.from_regex(r"\A[a-z]{1,5}@[a-z]{1,5}\.[a-z]{2,3}\Z"),
    st.from_regex(r"\A\+?[0-9 ()-]{3,25}\Z"),
    st.from_regex(r"\Ahttps?://[a-z]{1,8}\.[a-z]{2,3}(/[a-z]*)?\Z"),
    st.sampled_from(["", " ", "a", "b", "person", "company", "0", "1e3", "2024-02-30"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
    FORMAT_LIKE,
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "name", "qty", "content_type", "size", "x", "v"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("schema", _property_schemas())
@settings(max_examples=150, deadline=None)
@given(value=JSON)
def test_fast_check_is_never_looser_than_jsonschema(schema: dict[str, Any], value: Any) -> None:
    if compile_check(schema)(value):
        assert Draft202012Validator(schema).is_valid(value), value


def test_the_whole_data_schema_of_a_form_is_covered() -> None:
    from tests.engines.forms.factory import make_form
    from tests.factories import contact_form

    schema = compile_schema(make_form(*contact_form()["fields"]))
    quick = compile_check(schema)
    assert quick({"name": "Ann"}) and not quick({"name": 3})
