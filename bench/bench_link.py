"""A union's day over a slow link (DESIGN section 7): real hub and node processes, the node reaching the
hub through a throttling proxy (64 kbit/s each way, 500 ms round trip).

1. A day: 50 households with 4 members each (200 new persons), 100 enrolments, 100 edits (450 changes),
   entered through the node's JSON API on loopback; then one "Sync now" over the slow link. Reports time
   and bytes each way (HTTP included). Goal: < 20 s.
2. Interrupted: two more days (900 changes, two batches of 500 + 400); the link is cut once the upload
   has passed the middle of the second batch; then the sync is run again. Reports what was acknowledged
   before the cut and what the retry sent. Goal: at most one batch is sent again.
3. Lost answer: one more day; the hub's answer to the push is cut (the hub applied the batch, the node
   did not learn it). The retry sends the same batch once more and the hub answers from its store.

Not a test: run on demand, results go to docs/e2e.md.

    .venv/bin/python bench/bench_link.py [--households 50] [--bps 64000] [--rtt 0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import ApiError, HubProc, NodeProc, stop_all  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402


class LinkProxy(FaultProxy):
    """FaultProxy with propagation delay paid once per message (FaultProxy's ``delay_s`` sleeps per 4 KB
    chunk, which would count latency again for every chunk of one response), and one-shot cuts after a
    given number of bytes up or down."""

    def __init__(self, target_port: int, *, bps: int, rtt_s: float) -> None:
        super().__init__(target_port, bandwidth_bps=bps)
        self.one_way_s = rtt_s / 2
        self._last: dict[tuple[int, str], float] = {}
        self.cut_up_at: int | None = None
        self.cut_down_at: int | None = None
        self.cuts = 0
        self.pushes = 0  # push requests seen (a request line starts a chunk going up)

    def _send(self, dst: socket.socket, data: bytes, direction: str) -> None:
        key = (id(dst), direction)
        if direction == "up" and data.startswith(b"POST /sync/v1/push"):
            self.pushes += 1
        last = self._last.get(key)
        if last is None or time.monotonic() - last > 0.05:
            time.sleep(self.one_way_s)  # first bytes of a new message: propagation delay
        limit = self.cut_up_at if direction == "up" else self.cut_down_at
        sent = self.stats.bytes_up if direction == "up" else self.stats.bytes_down
        if limit is not None and sent + len(data) >= limit:
            keep = max(0, limit - sent)
            if keep:
                super()._send(dst, data[:keep], direction)
            if direction == "up":
                self.cut_up_at = None
            else:
                self.cut_down_at = None
            self.cuts += 1
            raise OSError("link cut (bench)")  # _pipe returns; _handle closes both sockets
        super()._send(dst, data, direction)
        self._last[key] = time.monotonic()


def day(node: NodeProc, rng: random.Random, households: int, tag: str) -> int:
    """Enter one day's work through the node's API; returns the number of changes it makes."""
    persons: list[str] = []
    changes = 0
    for h in range(households):
        members = [
            {
                "full_name_en": f"{tag} Member {h}-{m}",
                "full_name_bn": f"{tag} সদস্য {h}-{m}",
                "sex": "female" if m % 2 else "male",
                "date_of_birth": f"{1950 + rng.randint(0, 60)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "relation_to_head": ["head", "spouse", "son", "daughter"][m],
                "mobile": f"017{rng.randint(0, 99_999_999):08d}",
                "father_name": f"{tag} Father {h}",
                "occupation": rng.choice(["farmer", "day labourer", "housewife", "student"]),
            }
            for m in range(4)
        ]
        hh = node.api.post(
            "/api/v1/households",
            {
                "ward": str(rng.randint(1, 9)),
                "village": "Subil",
                "address": f"{tag} house {h}, Subil bazar road",
                "land_decimals": rng.choice([0, 5, 10]),
                "house_type": "kutcha",
                "monthly_income_bdt": rng.randrange(3000, 15000, 500),
                "members": members,
                "confirm_duplicate": True,
            },
        )
        persons += [m["id"] for m in hh["members"]]
        changes += 1 + len(hh["members"])
    for pid in persons[: len(persons) // 2]:
        node.api.post(
            "/api/v1/enrolments",
            {
                "person_id": pid,
                "programme": "OAA",
                "status": "applied",
                "applied_on": "2026-11-01",
                "payment_channel": "bkash",
                "account_number": f"017{rng.randint(0, 99_999_999):08d}",
                "benefit_amount_bdt": 600,
            },
        )
        changes += 1
    for pid in rng.sample(persons, len(persons) // 2):
        node.api.patch(f"/api/v1/persons/{pid}", {"mobile": f"018{rng.randint(0, 99_999_999):08d}"})
        changes += 1
    return changes


def pull_estimates(hub: HubProc, bps: int) -> str:
    """What the pull answers of day 1 weigh as the hub sends them (JSON), gzip'd, and without the entries
    the node itself sent (it already settled them from the push answer)."""
    import gzip
    import json

    from central_hub.store import SqlHubStore
    from sync_protocol.hub import HubEngine

    store = SqlHubStore(hub.db_url)
    try:
        page = HubEngine(store).pull_scopes(frozenset({"1"}), None, 500)
    finally:
        store.close()
    raw = json.dumps(page.to_json()).encode()
    packed = len(gzip.compress(raw, 6))
    others = [e for e in page.entries if e.origin_seq is None]  # hub-made entries only
    slim = len(json.dumps({**page.to_json(), "entries": [e.to_json() for e in others]}).encode())
    return (
        f"(pull page of {len(page.entries)} entries: {len(raw):,} bytes JSON = {len(raw) * 8 / bps:.1f} s on this "
        "link; "
        f"gzip'd {packed:,} bytes = {packed * 8 / bps:.1f} s; without the node's own entries {slim:,} bytes)"
    )


def measured_sync(node: NodeProc, proxy: LinkProxy) -> dict[str, Any]:
    up, down, pushes = proxy.stats.bytes_up, proxy.stats.bytes_down, proxy.pushes
    t0 = time.perf_counter()
    error = None
    summary: dict[str, Any] = {}
    try:
        summary = node.sync()["summary"]
    except ApiError as exc:
        error = exc.body
    return {
        "seconds": time.perf_counter() - t0,
        "up": proxy.stats.bytes_up - up,
        "down": proxy.stats.bytes_down - down,
        "summary": summary,
        "error": error,
        "pushes": proxy.pushes - pushes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=50, help="Households per day (4 members each).")
    parser.add_argument("--bps", type=int, default=64_000, help="Link bit rate each way.")
    parser.add_argument("--rtt", type=float, default=0.5, help="Round trip time, seconds.")
    args = parser.parse_args()
    rng = random.Random(5)
    root = Path(tempfile.mkdtemp(prefix="bench-link-"))
    hub = HubProc(root / "hub").init().start()
    proxy = LinkProxy(hub.port, bps=args.bps, rtt_s=args.rtt).start()
    node = NodeProc("subil", root, "1", proxy.url).init()
    try:
        node.enroll(hub.token(union="1"))
        node.start()
        node.api.timeout = 900  # a round over this link takes minutes when it pulls back two days
        print(f"link: {args.bps} bit/s each way, {args.rtt * 1000:.0f} ms round trip; data in {root}")

        n = day(node, rng, args.households, "D1")
        r = measured_sync(node, proxy)
        s = r["summary"]
        print(
            f"1. a day ({n} changes: {4 * args.households} persons, {args.households} households, "
            f"{2 * args.households} enrolments, {2 * args.households} edits): {r['seconds']:.1f} s, "
            f"{r['up']:,} bytes up, {r['down']:,} bytes down; {s.get('batches_pushed')} batch(es), "
            f"{s.get('changes_acked')} acknowledged, {s.get('pulled')} pulled back ({r['up'] / max(1, n):.0f} "
            "bytes up per change)"
        )

        print("   " + pull_estimates(hub, args.bps))

        n2 = day(node, rng, args.households, "D2") + day(node, rng, args.households, "D3")
        # Cut once the upload has passed the first batch (500 of n2 changes) and half of the second.
        per_change = r["up"] / max(1, n)
        proxy.cut_up_at = proxy.stats.bytes_up + int(per_change * (500 + (n2 - 500) / 2))
        cut = measured_sync(node, proxy)
        cs = cut["summary"]
        resent = cut["pushes"] - (cs.get("batches_pushed") or 0)
        print(
            f"2. interrupted ({n2} changes pending, {-(-n2 // 500)} batches; link cut in the 2nd batch's upload: "
            f"{'yes' if proxy.cuts else 'NO'}): the round retried by itself and finished in {cut['seconds']:.1f} s "
            f"with {cut['pushes']} push requests for {cs.get('batches_pushed')} batches ({resent} "
            f"batch re-sent), {cut['up']:,} bytes up ({cut['up'] - per_change * n2:,.0f} more than the clean "
            f"estimate {per_change * n2:,.0f}), {cut['down']:,} bytes down; {cs.get('changes_acked')} acknowledged; "
            f"error: {cut['error']}; pending now {node.status()['pending_changes']}"
        )

        n3 = day(node, rng, args.households, "D4")
        cuts = proxy.cuts
        proxy.cut_down_at = proxy.stats.bytes_down + 200  # inside the headers of the push answer
        lost = measured_sync(node, proxy)
        again = measured_sync(node, proxy)
        a = again["summary"]
        print(
            f"3. lost answer ({n3} changes): first attempt {lost['up']:,} bytes up, answer cut "
            f"({'yes' if proxy.cuts > cuts else 'no'}), {lost['pushes']} push request(s) in that round, error: "
            f"{lost['error']}; the next round re-sent {a.get('batches_pushed')} batch(es), "
            f"{again['up']:,} bytes up; outcomes {a.get('applied')} applied / {a.get('merged')} merged "
            f"(answered from the hub's store); pending now {node.status()['pending_changes']}"
        )
    finally:
        stop_all([node.proc, hub.proc])
        with contextlib.suppress(Exception):
            proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
