"""The demo: a central hub and three field nodes of Debidwar upazila (Cumilla) on this machine.

* hub (SQLite) with a staff account ``admin``;
* Subil union office (union 1) and North Gunaighor union office (union 2);
* the Debidwar upazila office, whose node serves every union of the upazila. Two offices can edit the
  same Subil record (the union office and the upazila office), which is how real conflicts arise.

Each node is filled through its JSON API with a synthetic sample (households, members with Bangla and
English names, programme enrolments, a grievance); then all sync, and one real conflict is made: both
offices change the same person's mobile number from the same base. The URLs and the generated
passwords are printed once. Ctrl-C stops every process.

Usage: scripts/demo.sh [--households 12] [--data-dir DIR] [--sync-interval 60]
(``scripts/demo.sh --simulation ...`` runs the seeded protocol simulation instead.)
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import HubProc, NodeProc, stop_all  # noqa: E402

DEBIDWAR_UPAZILA = "1"
SUBIL, NORTH_GUNAIGHOR = "1", "2"

# (English, Bangla) pairs; a realistic spread of rural Cumilla names.
WOMEN = [
    ("Rahima Khatun", "রহিমা খাতুন"), ("Fatema Begum", "ফাতেমা বেগম"), ("Nasima Akter", "নাসিমা আক্তার"),
    ("Shahana Parvin", "শাহানা পারভীন"), ("Rokeya Begum", "রোকেয়া বেগম"), ("Salma Khatun", "সালমা খাতুন"),
    ("Jahanara Begum", "জাহানারা বেগম"), ("Morjina Akter", "মর্জিনা আক্তার"), ("Hasina Begum", "হাসিনা বেগম"),
    ("Amena Khatun", "আমেনা খাতুন"), ("Kohinur Begum", "কোহিনূর বেগম"), ("Rina Rani Das", "রিনা রানী দাস"),
]
MEN = [
    ("Md Abdul Karim", "মোঃ আব্দুল করিম"), ("Md Rafiqul Islam", "মোঃ রফিকুল ইসলাম"), ("Abul Kashem", "আবুল কাশেম"),
    ("Md Shahidul Haque", "মোঃ শহিদুল হক"), ("Nur Mohammad", "নূর মোহাম্মদ"), ("Md Jashim Uddin", "মোঃ জসিম উদ্দিন"),
    ("Abdur Rahman", "আব্দুর রহমান"), ("Md Mizanur Rahman", "মোঃ মিজানুর রহমান"), ("Harun Mia", "হারুন মিয়া"),
    ("Sukumar Chandra Das", "সুকুমার চন্দ্র দাস"), ("Md Aminul Islam", "মোঃ আমিনুল ইসলাম"), ("Delwar Hossain", "দেলোয়ার হোসেন"),
]
CHILDREN = [
    ("Sumaiya Akter", "সুমাইয়া আক্তার", "female"), ("Md Rakib Hasan", "মোঃ রাকিব হাসান", "male"),
    ("Tania Akter", "তানিয়া আক্তার", "female"), ("Md Sabbir Hossain", "মোঃ সাব্বির হোসেন", "male"),
    ("Mim Akter", "মিম আক্তার", "female"), ("Md Arif Hossain", "মোঃ আরিফ হোসেন", "male"),
]
VILLAGES = {SUBIL: ["Subil", "Dhamti", "Bhani"], NORTH_GUNAIGHOR: ["Gunaighor", "Barashalghar", "Jafarganj"]}


def sample_household(rng: random.Random, union: str) -> dict[str, Any]:
    """One household with head, maybe a spouse and children; widows and elderly heads are common."""
    widow = rng.random() < 0.3
    elderly = rng.random() < 0.4
    head_year = rng.randint(1940, 1958) if elderly else rng.randint(1965, 1995)
    members: list[dict[str, Any]] = []
    mobile = f"01{rng.choice('3456789')}{rng.randint(0, 99_999_999):08d}"
    if widow:
        en, bn = rng.choice(WOMEN)
        members.append({"full_name_en": en, "full_name_bn": bn, "sex": "female", "marital_status": "widowed",
                        "relation_to_head": "head",
                        "date_of_birth": f"{head_year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                        "mobile": mobile, "occupation": "housewife"})
    else:
        en, bn = rng.choice(MEN)
        wen, wbn = rng.choice(WOMEN)
        members.append({"full_name_en": en, "full_name_bn": bn, "sex": "male", "marital_status": "married",
                        "relation_to_head": "head",
                        "date_of_birth": f"{head_year}-0{rng.randint(1, 9)}-0{rng.randint(1, 9)}",
                        "mobile": mobile, "occupation": rng.choice(["farmer", "day labourer", "rickshaw puller"])})
        members.append({"full_name_en": wen, "full_name_bn": wbn, "sex": "female", "marital_status": "married",
                        "relation_to_head": "spouse", "spouse_name": en,
                        "date_of_birth": f"{head_year + rng.randint(2, 8)}-1{rng.randint(0, 2)}-0{rng.randint(1, 9)}"})
    for _ in range(rng.randint(0, 3)):
        cen, cbn, sex = rng.choice(CHILDREN)
        members.append({"full_name_en": cen, "full_name_bn": cbn, "sex": sex,
                        "relation_to_head": "daughter" if sex == "female" else "son",
                        "father_name": members[0]["full_name_en"] if members[0]["sex"] == "male" else None,
                        "mother_name": members[0]["full_name_en"] if members[0]["sex"] == "female" else None,
                        "date_of_birth": f"{rng.randint(2008, 2020)}-0{rng.randint(1, 9)}-2{rng.randint(0, 8)}",
                        "dob_estimated": rng.random() < 0.2})
    for m in members:
        for k in [k for k, v in m.items() if v is None]:
            del m[k]
    return {
        "union_id": union,
        "ward": str(rng.randint(1, 9)),
        "village": rng.choice(VILLAGES[union]),
        "address": f"House {rng.randint(1, 300)}, {rng.choice(['bazar road', 'school para', 'mosque road'])}",
        "land_decimals": rng.choice([0, 2, 5, 8, 12, 20]),
        "house_type": rng.choice(["kutcha", "kutcha", "semi_pucca", "jhupri"]),
        "monthly_income_bdt": rng.randrange(3000, 15000, 500),
        "members": members,
    }


def fill(node: NodeProc, union: str, households: int, rng: random.Random) -> list[dict[str, Any]]:
    made = []
    for _ in range(households):
        hh = node.api.post("/api/v1/households", {**sample_household(rng, union), "confirm_duplicate": True})
        made.append(hh)
        head = hh["members"][0]
        year = int(head["date_of_birth"][:4])
        programme = "WA" if head.get("marital_status") == "widowed" else ("OAA" if year <= 1961 else None)
        if programme:
            node.api.post("/api/v1/enrolments", {
                "person_id": head["id"], "programme": programme, "status": "applied",
                "applied_on": "2026-10-0" + str(rng.randint(1, 9)),
                "payment_channel": rng.choice(["bkash", "nagad", "post_office"]),
                "account_number": head.get("mobile") or "", "benefit_amount_bdt": 600 if programme == "OAA" else 550,
            })
    complainant = made[0]["members"][0]
    node.api.post("/api/v1/grievances", {
        "complainant_person_id": complainant["id"], "programme": "OAA", "category": "payment_delay",
        "description": "Allowance for September not received / সেপ্টেম্বরের ভাতা পাওয়া যায়নি",
    })
    return made


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="Where hub and nodes keep their data (default: a new temp dir).")
    parser.add_argument("--households", type=int, default=12, help="Households per union node (default 12).")
    parser.add_argument("--sync-interval", type=float, default=60, help="Background sync interval of the nodes, s.")
    parser.add_argument("--seed", type=int, default=2026, help="Seed of the synthetic sample.")
    args = parser.parse_args(argv)

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="nsp-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    procs: list[Any] = []
    try:
        say(f"data directory: {root}")
        hub = HubProc(root / "hub").init()
        procs.append(hub.proc)
        hub.start()
        say(f"hub started (pid {hub.proc.pid if hub.proc else '?'})")
        every = args.sync_interval
        nodes = {
            "subil": NodeProc("subil", root, SUBIL, hub.url, sync_interval=every),
            "north-gunaighor": NodeProc("north-gunaighor", root, NORTH_GUNAIGHOR, hub.url, sync_interval=every),
            "debidwar-upazila": NodeProc("debidwar-upazila", root, SUBIL, hub.url, sync_interval=every),
        }
        for name, node in nodes.items():
            if stop.is_set():
                return 0
            node.init()
            procs.append(node.proc)
            token = hub.token(upazila=DEBIDWAR_UPAZILA) if name == "debidwar-upazila" else hub.token(union=node.union)
            node.enroll(token)
            node.start()
            say(f"node {name} enrolled and started (pid {node.proc.pid if node.proc else '?'})")

        subil, gunaighor, upazila = nodes["subil"], nodes["north-gunaighor"], nodes["debidwar-upazila"]
        say(f"filling Subil and North Gunaighor with {args.households} households each ...")
        made = fill(subil, SUBIL, args.households, rng)
        fill(gunaighor, NORTH_GUNAIGHOR, args.households, rng)
        for name in ("subil", "north-gunaighor", "debidwar-upazila"):
            s = nodes[name].sync()["summary"]
            say(f"sync {name}: sent {s['changes_acked']} change(s), received {s['pulled']}")
        held = len(upazila.all("persons"))
        say(f"debidwar-upazila now holds {held} person(s) of both unions (its background agent may have pulled first)")

        # One real conflict: the union office and the upazila office correct the same mobile number.
        person = made[0]["members"][0]
        subil.api.patch(f"/api/v1/persons/{person['id']}", {"mobile": "01711000111"})
        upazila.api.patch(f"/api/v1/persons/{person['id']}", {"mobile": "01911000222"})
        upazila.sync()
        s = subil.sync()["summary"]
        conflicts = hub.conflicts()
        say(f"conflict: {s['conflicts']} change(s) from Subil queued for central staff; open conflicts at the hub: "
            f"{len(conflicts)}")
        for c in conflicts:
            say(f"  {c['entity']} {c['entity_id']} field {c['field']}: hub {c['hub_value']!r} vs incoming "
                f"{c['incoming_value']!r}")

        say("\n=== demo ready ===")
        say(f"central hub (staff):   {hub.url}/   user admin   password {hub.admin_password}")
        for name, node in nodes.items():
            say(f"node {name:17s} {node.url}/   user {node.operator}   password {node.password}")
        say("resolve the conflict in the hub's conflict queue, then press 'Sync now' on the nodes.")
        say("press Ctrl-C to stop everything.")
        while not stop.wait(0.5):
            dead = [p.name for p in procs if p is not None and not p.alive]
            if dead:
                say(f"process(es) ended unexpectedly: {', '.join(dead)}; stopping")
                return 1
        return 0
    finally:
        stop_all(list(reversed(procs)))
        say("stopped: every demo process has ended")


if __name__ == "__main__":
    sys.exit(main())
