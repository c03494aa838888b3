"""The semantic checks of app definitions: one test per check, each with its exact pointer.

``load`` is pure (no database), so these run in milliseconds. Each test starts from a small
valid app (tests/factories.py), breaks one thing and expects exactly the one problem —
which also proves the form engine's own checks and the app-level ones are not reported twice.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from formloom import builtin_apps
from formloom.engines.apps import DefinitionInvalid
from formloom.engines.forms import spec as spec_module
from formloom.engines.forms.spec import computed_order, dependency_cycles
from formloom.platform.apps.definition import load
from tests import factories as f


def problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(pointer, code) of every problem ``load`` reports; each message must be a sentence."""
    with pytest.raises(DefinitionInvalid) as info:
        load(document)
    for problem in info.value.problems:
        assert problem.message and not problem.message.startswith("Input should")
    return [(problem.path, problem.code) for problem in info.value.problems]


def messages(document: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionInvalid) as info:
        load(document)
    return [problem.message for problem in info.value.problems]


def options(*values: str) -> list[dict[str, str]]:
    return [{"value": value} for value in values]


# -- duplicate keys ----------------------------------------------------------------------------


def test_duplicate_form_key() -> None:
    document = f.app("dup", f.form("a", f.field("x")), f.form("b", f.field("y")))
    document["forms"][1]["key"] = "a"
    assert problems(document) == [("/forms/1/key", "duplicate_key")]
    assert "already used by /forms/0" in messages(document)[0]


def test_duplicate_field_key_in_a_form() -> None:
    document = f.app("dup", f.form("a", f.field("x"), f.field("y"), f.field("x")))
    assert problems(document) == [("/forms/0/fields/2/key", "duplicate_key")]


def test_duplicate_column_key_in_a_table() -> None:
    table = f.field("items", "table", fields=[f.field("qty", "integer"), f.field("qty")])
    document = f.app("dup", f.form("a", f.field("name"), table))
    assert problems(document) == [("/forms/0/fields/1/fields/1/key", "duplicate_key")]


def test_a_column_may_repeat_a_field_key_of_the_form() -> None:
    table = f.field("items", "table", fields=[f.field("name")])
    load(f.app("ok", f.form("a", f.field("name"), table)))


def test_duplicate_role_key() -> None:
    document = f.app("dup", roles=[{"key": "doctor"}, {"key": "nurse"}, {"key": "doctor"}])
    assert problems(document) == [("/roles/2/key", "duplicate_key")]


def _flow(key: str) -> dict[str, object]:
    return {
        "key": key,
        "form": "contact",
        "nodes": [{"type": "start", "key": "begin"}, {"type": "end", "key": "done"}],
        "edges": [{"from": "begin", "to": "done"}],
    }


def test_duplicate_flow_keys() -> None:
    document = f.app("dup", flows=[_flow("one"), _flow("two"), _flow("one")])
    assert problems(document) == [("/flows/2/key", "duplicate_key")]


def test_duplicate_rule_keys() -> None:
    rule = {
        "on": {"form": "contact", "event": "created"},
        "then": [{"type": "set", "values": {"name": "x"}}],
    }
    document = f.app("dup", rules=[{"key": key, **rule} for key in ("one", "two", "one")])
    assert problems(document) == [("/rules/2/key", "duplicate_key")]


def test_duplicate_report_and_dashboard_keys() -> None:
    report = {"label": "R", "form": "contact", "measures": [{"key": "n", "op": "count"}]}
    board = {"label": "D", "items": [{"report": "one"}]}
    document = f.app(
        "dup",
        reports=[{"key": key, **report} for key in ("one", "two", "one")],
        dashboards=[{"key": key, **board} for key in ("one", "one")],
    )
    assert problems(document) == [
        ("/reports/2/key", "duplicate_key"),
        ("/dashboards/1/key", "duplicate_key"),
    ]


def test_duplicate_option_value() -> None:
    document = f.app("dup", f.form("a", f.field("kind", "select", options=options("a", "b", "a"))))
    assert problems(document) == [("/forms/0/fields/0/options/2/value", "duplicate_option")]


def test_duplicate_option_value_in_a_table_column() -> None:
    column = f.field("tags", "multiselect", options=options("x", "x"))
    document = f.app("dup", f.form("a", f.field("rows", "table", fields=[column])))
    assert problems(document) == [
        ("/forms/0/fields/0/fields/0/options/1/value", "duplicate_option")
    ]


def test_reserved_field_key() -> None:
    document = f.app("res", f.form("a", f.field("name"), f.field("version", "integer")))
    assert problems(document) == [("/forms/0/fields/1/key", "reserved_key")]


def test_duplicate_locale() -> None:
    document = f.app("loc", locales=["en", "zh-CN", "en"])
    assert problems(document) == [("/locales/2", "duplicate_locale")]


# -- expressions -------------------------------------------------------------------------------


def test_unknown_variable_in_visible_if_points_at_the_var() -> None:
    field = f.field("b", visible_if={"and": [{"var": "a"}, {"==": [{"var": "colour"}, "red"]}]})
    document = f.app("var", f.form("f", f.field("a", "boolean"), field))
    assert problems(document) == [("/forms/0/fields/1/visible_if/and/1/==/0", "unknown_variable")]
    assert messages(document) == ["reads 'colour', but 'colour' is not a field of form 'f'"]


def test_unknown_variable_in_a_formula() -> None:
    total = f.field("total", "computed", result_type="number", formula={"*": [{"var": "qty"}, 2]})
    document = f.app("var", f.form("f", f.field("amount", "number"), total))
    assert problems(document) == [("/forms/0/fields/1/formula/*/0", "unknown_variable")]


def test_unknown_variable_in_default_expr() -> None:
    field = f.field("due", "date", default_expr={"date_add": [{"var": "start"}, 7, "day"]})
    document = f.app("var", f.form("f", field))
    assert problems(document) == [("/forms/0/fields/0/default_expr/date_add/0", "unknown_variable")]


def test_a_dotted_path_is_checked_by_its_first_segment() -> None:
    field = f.field("note", visible_if={"var": "items.0.qty"})
    table = f.field("items", "table", fields=[f.field("qty", "integer")])
    load(f.app("ok", f.form("f", table, field)))
    field["visible_if"] = {"var": "lines.0.qty"}
    assert problems(f.app("bad", f.form("f", table, field))) == [
        ("/forms/0/fields/1/visible_if", "unknown_variable")
    ]


def test_a_column_sees_its_row_and_the_record() -> None:
    columns = [
        f.field("qty", "integer"),
        f.field("price", "number"),
        f.field(
            "total",
            "computed",
            result_type="number",
            formula={"*": [{"var": "qty"}, {"var": "price"}, {"var": "discount"}]},
        ),
        f.field("note", visible_if={">": [{"var": "qty"}, {"var": "limit"}]}),
    ]
    document = f.app(
        "rows",
        f.form("f", f.field("discount", "number"), f.field("items", "table", fields=columns)),
    )
    assert problems(document) == [("/forms/0/fields/1/fields/3/visible_if/>/1", "unknown_variable")]
    assert "not a column of table 'items' or a field of form 'f'" in messages(document)[0]


def test_platform_context_and_element_variables_are_allowed() -> None:
    field = f.field(
        "b",
        visible_if={
            "and": [
                {"==": [{"var": "$user.role"}, "doctor"]},
                {"some": [{"var": "tags"}, {"==": [{"var": ""}, "vip"]}]},
                {"all": [{"var": "tags"}, {"in": [{"var": "anything"}, ["a", "b"]]}]},
                {"var": [{"cat": ["ta", "gs"]}]},  # a computed path cannot be checked
            ]
        },
    )
    tags = f.field("tags", "multiselect", options=options("vip", "a", "b"))
    load(f.app("ok", f.form("f", tags, field)))


def test_a_variable_naming_a_section_is_refused() -> None:
    field = f.field("b", visible_if={"var": "details"})
    document = f.app("sec", f.form("f", f.field("details", "section"), field))
    assert problems(document) == [("/forms/0/fields/1/visible_if", "unknown_variable")]
    assert "is a section" in messages(document)[0]


def test_missing_and_val_are_checked_too() -> None:
    field = f.field("b", visible_if={"or": [{"missing": ["a", "zz"]}, {"val": "yy"}]})
    document = f.app("miss", f.form("f", f.field("a"), field))
    assert problems(document) == [
        ("/forms/0/fields/1/visible_if/or/0", "unknown_variable"),
        ("/forms/0/fields/1/visible_if/or/1", "unknown_variable"),
    ]


def test_unknown_operator_points_into_the_expression() -> None:
    field = f.field("b", visible_if={"and": [{"var": "a"}, {"frobnicate": [1]}]})
    document = f.app("op", f.form("f", f.field("a", "boolean"), field))
    assert problems(document) == [("/forms/0/fields/1/visible_if/and/1", "invalid_expression")]
    assert messages(document) == ["unknown operator 'frobnicate'"]


def test_wrong_argument_count_in_a_table_column_formula() -> None:
    column = f.field("x", "computed", formula={"substr": ["abc"]})
    document = f.app("op", f.form("f", f.field("rows", "table", fields=[column])))
    assert problems(document) == [("/forms/0/fields/0/fields/0/formula", "invalid_expression")]


def test_visible_if_reading_its_own_field() -> None:
    document = f.app("self", f.form("f", f.field("a", visible_if={"!": {"var": "a"}})))
    assert problems(document) == [("/forms/0/fields/0/visible_if", "self_reference")]


# -- references --------------------------------------------------------------------------------


def test_relation_to_a_missing_form() -> None:
    document = f.app("rel", f.form("a", f.field("name"), f.field("ref", "relation", target="b")))
    assert problems(document) == [("/forms/0/fields/1/target", "unknown_form")]
    assert "(forms: a)" in messages(document)[0]


def test_relation_to_a_missing_form_in_a_table_column() -> None:
    column = f.field("who", "relation", target="person")
    document = f.app("rel", f.form("a", f.field("rows", "table", fields=[column])))
    assert problems(document) == [("/forms/0/fields/0/fields/0/target", "unknown_form")]


def test_computed_field_depending_on_itself() -> None:
    document = f.app("cyc", f.form("f", f.field("n", "computed", formula={"var": "n"})))
    assert problems(document) == [("/forms/0/fields/0/formula", "computed_cycle")]


def test_computed_fields_depending_on_each_other() -> None:
    document = f.app(
        "cyc",
        f.form(
            "f",
            f.field("a", "computed", formula={"cat": [{"var": "b"}, "!"]}),
            f.field("b", "computed", formula={"cat": [{"var": "c"}, "?"]}),
            f.field("c", "computed", formula={"var": "a"}),
            f.field("d", "computed", formula={"var": "a"}),  # reads the cycle, is not on it
        ),
    )
    assert problems(document) == [
        ("/forms/0/fields/0/formula", "computed_cycle"),
        ("/forms/0/fields/1/formula", "computed_cycle"),
        ("/forms/0/fields/2/formula", "computed_cycle"),
    ]
    assert "(a -> b -> c -> a)" in messages(document)[0]


def test_computed_cycle_among_table_columns() -> None:
    columns = [
        f.field("x", "computed", formula={"var": "y"}),
        f.field("y", "computed", formula={"var": "x"}),
    ]
    document = f.app("cyc", f.form("f", f.field("rows", "table", fields=columns)))
    assert problems(document) == [
        ("/forms/0/fields/0/fields/0/formula", "computed_cycle"),
        ("/forms/0/fields/0/fields/1/formula", "computed_cycle"),
    ]


def test_title_field_that_is_not_a_field() -> None:
    document = f.app("title", f.form("f", f.field("name"), title_field="nmae"))
    assert problems(document) == [("/forms/0/title_field", "unknown_title_field")]


def test_title_field_without_a_single_value() -> None:
    tags = f.field("tags", "multiselect", options=options("a"))
    document = f.app("title", f.form("f", f.field("name"), tags, title_field="tags"))
    assert problems(document) == [("/forms/0/title_field", "invalid_title_field")]


# -- labels and locales ------------------------------------------------------------------------


def test_labels_must_cover_every_declared_locale() -> None:
    both = {"en": "x", "zh-CN": "某"}
    english = {"en": "x"}
    document = f.app(
        "loc",
        f.form(
            "f",
            f.field("name", label=english, help=english),
            f.field("kind", "select", label=both, options=[{"value": "a", "label": english}]),
            f.field("rows", "table", label="Rows", fields=[f.field("qty", label=english)]),
            label=english,
        ),
        locales=["en", "zh-CN"],
        label={"zh-CN": "应用"},
        roles=[{"key": "doctor", "label": english, "description": "Plain strings are fine"}],
    )
    assert problems(document) == [
        ("/label", "missing_locale"),
        ("/forms/0/label", "missing_locale"),
        ("/forms/0/fields/0/label", "missing_locale"),
        ("/forms/0/fields/0/help", "missing_locale"),
        ("/forms/0/fields/1/options/0/label", "missing_locale"),
        ("/forms/0/fields/2/fields/0/label", "missing_locale"),
        ("/roles/0/label", "missing_locale"),
    ]
    assert messages(document)[0].startswith("has no text for en (the app's locales are en, zh-CN)")


def test_the_default_locale_is_english() -> None:
    document = f.app("loc", label={"fr": "Démo"})
    assert problems(document) == [("/label", "missing_locale")]


# -- migrations --------------------------------------------------------------------------------


def migration_app(**migration: Any) -> dict[str, Any]:
    form = f.form(
        "person", f.field("full_name"), f.field("age", "integer"), f.field("s", "section")
    )
    return f.app("mig", form, migrations=[{"form": "person", **migration}])


def test_a_valid_migration_loads() -> None:
    spec = load(
        migration_app(
            rename={"name": "full_name"},
            set={"age": {"years_between": [{"var": "birth_date"}, {"today": []}]}},
        )
    )
    assert spec.migrations[0].rename == {"name": "full_name"}


def test_migration_of_a_form_that_does_not_exist() -> None:
    document = migration_app(rename={"a": "b"})
    document["migrations"][0]["form"] = "people"
    assert problems(document) == [("/migrations/0/form", "unknown_form")]


def test_migration_renaming_to_a_key_that_is_not_a_field() -> None:
    document = migration_app(rename={"name": "fullname", "old": "s"})
    assert problems(document) == [
        ("/migrations/0/rename/name", "unknown_field"),
        ("/migrations/0/rename/old", "unknown_field"),
    ]


def test_migration_setting_a_key_that_is_not_a_field() -> None:
    document = migration_app(set={"agee": 5})
    assert problems(document) == [("/migrations/0/set/agee", "unknown_field")]


def test_migration_set_expression_is_checked() -> None:
    document = migration_app(set={"age": {"+": [{"var": "age"}, {"inc": [1]}]}})
    assert problems(document) == [("/migrations/0/set/age/+/1", "invalid_expression")]


# -- every problem at once ---------------------------------------------------------------------


def test_a_bad_field_elsewhere_does_not_hide_semantic_problems() -> None:
    document = f.app(
        "all",
        f.form(
            "a",
            f.field("x"),
            f.field("x", "nosuchtype"),
            f.field("y", "integer", min="5"),
            f.field("ref", "relation", target="nowhere"),
            f.field("k", "select", options=options("v", "v"), visible_if={"var": "zz"}),
            title_field="missing",
        ),
        f.form("a", f.field("z")),
        roles=[{"key": "r"}, {"key": "r", "colour": "red"}],
    )
    assert problems(document) == [  # in document order
        ("/forms/0/fields/1/key", "duplicate_key"),
        ("/forms/0/fields/1/type", "union_tag_invalid"),
        ("/forms/0/fields/2/min", "int_type"),
        ("/forms/0/fields/3/target", "unknown_form"),
        ("/forms/0/fields/4/options/1/value", "duplicate_option"),
        ("/forms/0/fields/4/visible_if", "unknown_variable"),
        ("/forms/0/title_field", "unknown_title_field"),
        ("/forms/1/key", "duplicate_key"),
        ("/roles/1/key", "duplicate_key"),
        ("/roles/1/colour", "extra_forbidden"),
    ]


def test_shapes_are_strict_as_in_the_json_schema() -> None:
    document = f.app("strict", f.form("a", f.field("x", required="yes"), f.field("n", label=5)))
    assert problems(document) == [
        ("/forms/0/fields/0/required", "bool_type"),
        ("/forms/0/fields/1/label", "string_type"),
    ]
    assert messages(document) == ["must be true or false", "must be a string or an object"]


def test_values_that_cannot_be_stored_are_refused_first() -> None:
    document = f.app("nul", label="a\x00b")
    assert problems(document) == [("/label", "invalid_value")]


def test_the_bundled_apps_pass_every_check() -> None:
    for name in builtin_apps.available():
        load(builtin_apps.load(name))


# -- robustness --------------------------------------------------------------------------------

JUNK: list[Any] = [None, 5, -1.5, True, "", "x", [], [1, "a"], {}, {"key": 5}, {"var": "a"}]


def _locations(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _locations(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _locations(child, (*path, index))


def test_junk_anywhere_is_a_definition_problem_never_a_crash() -> None:
    """Every value of a realistic definition replaced by every kind of junk, one at a time:
    ``load`` either accepts the result or lists problems with pointers into it."""
    base = f.crm_app()
    base["locales"] = ["en", "zh-CN"]
    base["roles"] = [{"key": "admin", "label": {"en": "Admin", "zh-CN": "管理员"}}]
    base["migrations"] = [{"form": "deal", "rename": {"name": "title"}, "set": {"amount": 0}}]
    base["rules"] = [{"key": "r1", "if": {"var": "x"}}]
    text = json.dumps(base)
    tried = 0
    for path in list(_locations(base))[1:]:
        for junk in JUNK:
            document = json.loads(text)
            node = document
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = copy.deepcopy(junk)
            try:
                load(document)
            except DefinitionInvalid as exc:
                assert exc.problems
                for problem in exc.problems:
                    assert problem.path == "" or problem.path.startswith("/")
                    assert problem.message
            tried += 1
    assert tried > 1000


def chain(count: int, *, ring: bool) -> dict[str, Any]:
    """``count`` computed fields each reading the next; the last reads the first if ``ring``."""
    fields = [f.field(f"c{i}", "computed", formula={"var": f"c{i + 1}"}) for i in range(count)]
    last = f"c{count}"
    fields.append(f.field(last, "computed", formula={"var": "c0"}) if ring else f.field(last))
    return f.app("chain", f.form("f", *fields))


def test_thousands_of_computed_fields_are_checked_in_linear_time() -> None:
    """A 1 MiB body can hold ~12,000 computed fields; checking them must not take minutes
    (pairwise checks did) nor exhaust the recursion limit (a recursive ordering did)."""
    started = time.perf_counter()
    spec = load(chain(3000, ring=False))
    order = [field.key for field in computed_order(spec.forms[0].fields)]
    assert order == [f"c{i}" for i in range(2999, -1, -1)]
    document = chain(3000, ring=True)
    found = problems(document)
    assert found == [(f"/forms/0/fields/{i}/formula", "computed_cycle") for i in range(3001)]
    assert max(len(message) for message in messages(document)) < 200  # long routes are cut
    assert time.perf_counter() - started < 10  # ~0.5 s; pairwise checks took over a minute


@pytest.mark.parametrize("small_component", [50, 0], ids=["shortest-routes", "tree-routes"])
def test_every_key_on_a_cycle_gets_a_true_route(
    small_component: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dependency_cycles`` against brute force on random graphs, with the shortest route
    per key (small tangles) and with routes through the tangle's first key (big ones)."""
    monkeypatch.setattr(spec_module, "SMALL_COMPONENT", small_component)
    rng = random.Random(7)
    for _ in range(400):
        keys = [f"k{i}" for i in range(rng.randint(1, 9))]
        needs = {key: [other for other in keys if rng.random() < 0.25] for key in keys}

        def reaches(start: str, needs: dict[str, list[str]] = needs) -> set[str]:
            seen: set[str] = set()
            todo = list(needs[start])
            while todo:
                key = todo.pop()
                if key not in seen:
                    seen.add(key)
                    todo.extend(needs[key])
            return seen

        routes = dependency_cycles(needs)
        assert set(routes) == {key for key in keys if key in reaches(key)}, needs
        for key, route in routes.items():
            assert route[0] == route[-1] == key
            steps = zip(route, route[1:], strict=False)
            assert "…" in route or all(b in needs[a] for a, b in steps), route
