"""NID enqueue scan benchmark (not a test): how long the hub-log scan holds the hub's writer lock.

Writes N persons straight into a fresh hub database (records + hub log, as pushes would), then runs
``SqlVerificationStore.scan_until_done`` and reports persons queued per second and how long each writer
transaction (the only part that makes pushes wait) lasted.

    .venv/bin/python bench/bench_nid_scan.py                                   # SQLite, 20,000 persons
    .venv/bin/python bench/bench_nid_scan.py --db postgresql://postgres@127.0.0.1:5432/nidscan --persons 20000
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from central_hub.nid.sql_store import SqlVerificationStore
from central_hub.store import SqlHubStore
from sync_protocol.model import FieldState, LogEntry, RecordState


def fill(store: SqlHubStore, persons: int) -> None:
    with store.transaction():
        records, log = [], []
        for i in range(persons):
            values = {
                "full_name_bn": f"রহিমা খাতুন {i}", "date_of_birth": "1980-02-03", "nid": f"{1000000000 + i}",
                "father_name": "আব্দুল করিম", "sex": "female", "mobile": "01711000000",
            }  # fmt: skip
            fields = {k: FieldState(v, i + 1, "n1", {}) for k, v in values.items()}
            records.append(RecordState("person", f"p{i:07d}", "1", fields))
            log.append(LogEntry(i + 1, "person", f"p{i:07d}", "1", values, "n1", i + 1, 0))
        store.save_records(records)
        store.append_log(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="hub database URL (default: a temporary SQLite file); must be empty")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=1000, help="log entries per scan transaction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'hub.db'}"
        store = SqlHubStore(url)
        store.migrate()
        fill(store, args.persons)
        held: list[float] = []
        plain = store.transaction

        @contextlib.contextmanager
        def timed() -> Iterator[None]:
            start = time.perf_counter()
            with plain():
                yield
            held.append(time.perf_counter() - start)

        store.transaction = timed  # type: ignore[method-assign]
        queue = SqlVerificationStore(store)
        start = time.perf_counter()
        queued = queue.scan_until_done(datetime.now(UTC), args.limit)
        elapsed = time.perf_counter() - start
        store.close()
    print(
        f"| {url.split(':')[0]} | {args.persons} | {args.limit} | {queued} | {elapsed:.2f} | {queued / elapsed:,.0f} "
        f"| {sum(held) / len(held) * 1000:.0f} | {max(held) * 1000:.0f} |"
    )


if __name__ == "__main__":
    main()
