// The dashboard editor's model (ui/static/dashboard-editor-model.js): what is saved is the
// dashboard as the app's JSON writes it; tiles move and resize snapped to the 12 columns; a
// filter is wired per form and narrows a tile as the dashboard page decides; a KPI tile's
// own chart lives only while it differs from its report's. Run with `node --test tests/ui/`.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  applies,
  choicesFor,
  compact,
  emptyBoard,
  formsOfTiles,
  moveItem,
  newFilter,
  newItem,
  resizeItem,
  setFieldOf,
  setKpi,
  widthAt,
} from "../../ui/static/dashboard-editor-model.js";

const FORMS = {
  patient: { keys: ["name", "branch"], dates: [{ key: "created_at" }], choices: [{ key: "branch" }] },
  visit: { keys: ["department", "branch", "visit_date"], dates: [{ key: "visit_date" }], choices: [{ key: "department" }, { key: "branch" }] },
};
const REPORTS = { kpi: { form: "patient", chart: { type: "kpi", period_field: "created_at", period: "month" } }, visits: { form: "visit" } };

describe("compact: the dashboard as saved", () => {
  test("empty names and unwired forms are left out, widths written out", () => {
    const board = emptyBoard(["en", "zh-CN"]);
    board.key = "b";
    board.label.en = "Board";
    board.items.push({ report: "kpi" }, newItem("visits"));
    const filter = newFilter("select", ["en", "zh-CN"]);
    filter.key = "department";
    filter.field = { patient: "", visit: "department" };
    board.filters.push(filter);
    assert.deepEqual(compact(board), {
      key: "b",
      label: { en: "Board" },
      filters: [{ key: "department", type: "select", field: { visit: "department" } }],
      items: [{ report: "kpi", width: 6 }, { report: "visits", width: 6 }],
    });
  });

  test("no filters: none written", () => {
    assert.equal("filters" in compact({ key: "b", label: "B", filters: [], items: [] }), false);
  });
});

describe("tiles", () => {
  test("move within bounds", () => {
    const items = ["a", "b", "c"].map(newItem);
    assert.equal(moveItem(items, 0, 2), true);
    assert.deepEqual(items.map((i) => i.report), ["b", "c", "a"]);
    assert.equal(moveItem(items, 0, -1), false);
    assert.equal(moveItem(items, 2, 9), false);
  });

  test("resize is snapped to 1-12", () => {
    const item = newItem("a");
    assert.equal(resizeItem(item, 13), true);
    assert.equal(item.width, 12);
    assert.equal(resizeItem(item, 12), false);
    resizeItem(item, 0);
    assert.equal(item.width, 1);
  });

  test("a pointer's width is the nearest whole number of columns", () => {
    // 12 columns of 60 px with 16 px gaps from x = 100: 4 columns end at 100 + 4*60 + 3*16
    assert.equal(widthAt(100 + 4 * 60 + 3 * 16, 100, 60, 16), 4);
    assert.equal(widthAt(100 + 4 * 60 + 3 * 16 + 20, 100, 60, 16), 4);
    assert.equal(widthAt(100 + 4 * 60 + 3 * 16 + 50, 100, 60, 16), 5);
    assert.equal(widthAt(50, 100, 60, 16), 1);
    assert.equal(widthAt(5000, 100, 60, 16), 12);
  });
});

describe("filters", () => {
  test("wired per form; a tile is narrowed where its form's field is set", () => {
    const filter = newFilter("select", ["en"]);
    setFieldOf(filter, "visit", "department", FORMS);
    assert.equal(applies(filter, "visit", FORMS.visit), true);
    assert.equal(applies(filter, "patient", FORMS.patient), false);
    setFieldOf(filter, "visit", "", FORMS);
    assert.deepEqual(filter.field, {});
  });

  test("one field for every form becomes a map over the forms that have it", () => {
    const filter = { key: "branch", type: "select", field: "branch" };
    assert.equal(applies(filter, "patient", FORMS.patient), true);
    setFieldOf(filter, "visit", "", FORMS);
    assert.deepEqual(filter.field, { patient: "branch" });
  });

  test("record dates narrow every form; choices by type", () => {
    const period = { key: "period", type: "date_range", field: { patient: "created_at" } };
    assert.equal(applies(period, "patient", FORMS.patient), true);
    assert.deepEqual(choicesFor("date_range", FORMS.visit).map((c) => c.key), ["visit_date"]);
    assert.deepEqual(choicesFor("select", FORMS.visit).map((c) => c.key), ["department", "branch"]);
  });

  test("the forms of the tiles, in tile order, once each", () => {
    const board = { items: [newItem("visits"), newItem("kpi"), newItem("visits")] };
    assert.deepEqual(formsOfTiles(board, REPORTS), ["visit", "patient"]);
  });
});

describe("a KPI tile's own chart", () => {
  test("exists only while it differs from the report's", () => {
    const item = newItem("kpi");
    setKpi(item, REPORTS.kpi, { period: "week" });
    assert.deepEqual(item.chart, { type: "kpi", period_field: "created_at", period: "week" });
    setKpi(item, REPORTS.kpi, { period: "month" });
    assert.equal("chart" in item, false);
  });
});
