"""Run every benchmark: ``python -m tests.bench [--quick]`` (``make bench``).

Each benchmark prints its figures next to a baseline measured in the same process; the
latest figures are kept in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import sys

from tests.bench import (
    bench_bulk,
    bench_changes,
    bench_designer,
    bench_flows,
    bench_list_page,
    bench_load,
    bench_logic,
    bench_permissions,
    bench_projections,
    bench_records,
    bench_report_builder,
    bench_report_cells,
    bench_reports,
    bench_rule_list,
    bench_rules,
    bench_search,
    bench_validation,
)


def main() -> int:
    quick = "--quick" in sys.argv
    print("== JsonLogic evaluation")
    bench_logic.main()
    print("\n== record validation (30-field form)")
    bench_validation.main()
    print("\n== record API on PostgreSQL")
    asyncio.run(bench_records.main(quick))
    print("\n== bulk: 10,000 creates in one call vs 10,000 single POSTs (SQLite, PostgreSQL)")
    asyncio.run(bench_bulk.main(quick))
    print("\n== permissions on a list (PostgreSQL)")
    asyncio.run(bench_permissions.main(quick))
    print("\n== app change: plan and migration of 100,000 records (SQLite, PostgreSQL)")
    asyncio.run(bench_changes.main(quick, sqlite_only=False))
    print("\n== the list page vs the API page it shows (PostgreSQL, 1,000,000 records)")
    asyncio.run(bench_list_page.main(quick))
    print("\n== typed projections vs a hand-written typed table (PostgreSQL, 1,000,000 records)")
    asyncio.run(bench_projections.main(quick))
    print("\n== quick search: 1,000,000 patients on PostgreSQL, 100,000 on SQLite")
    asyncio.run(bench_search.main(quick))
    print("\n== a pivot report (PostgreSQL 1,000,000 records, SQLite 100,000)")
    asyncio.run(bench_reports.main(quick))
    print("\n== pivots of thousands of cells: the endpoint vs its SQL vs pandas (20,000 visits)")
    asyncio.run(bench_report_cells.main(quick))
    print("\n== the report builder's preview vs the report API (100,000 visits)")
    asyncio.run(bench_report_builder.main(quick))
    print("\n== rules: a write among 10,000 rules; a daily rule over 1,000,000 patients")
    asyncio.run(bench_rules.main(quick))
    print("\n== flows: a task completed among 10,000 live instances; the inbox among 100,000")
    print("   tasks; 10,000 due flow timers fired (SQLite, PostgreSQL)")
    asyncio.run(bench_flows.main(quick))
    print("\n== load: 8 clients, 70 % lists / 30 % creates; health while hostile requests run")
    asyncio.run(bench_load.main(quick))
    print("\n== the form designer opening a 200-field form (headless Chromium)")
    bench_designer.main(3 if quick else 7)
    print("\n== the rule list of an app with 1,000 rules (headless Chromium)")
    bench_rule_list.main(3 if quick else 7)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
