"""The demo: the bundled clinic CRM, installed with a small, repeatable set of sample data,
and a platform admin to sign in with.

Sample records are written through the record service, so they pass the same validation as
any client's; they are only added to an empty database. The clinic has two branches (Xuhui
and Pudong, both Asia/Shanghai): the demo users work at Xuhui (their ``branch`` attribute),
a quarter of the patients and half of the other staff belong to Pudong, and
``demo_head_office`` sees both. The ``admin`` user is created once,
with a random password printed on the console that one time — there is no default password.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from formloom import builtin_apps
from formloom.platform import demo_flows
from formloom.platform.apps.service import import_app
from formloom.platform.auth import repository as users
from formloom.platform.auth import service as auth
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform
from formloom.platform.models import Record
from formloom.platform.records.service import RecordService
from formloom.platform.rules import timers as rule_timers

SURNAMES = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Zhao",
    "Huang",
    "Zhou",
    "Wu",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Gao",
    "Luo",
]
GIVEN = [
    "Wei",
    "Fang",
    "Min",
    "Jing",
    "Lei",
    "Yan",
    "Jun",
    "Hui",
    "Tao",
    "Xia",
    "Ping",
    "Ying",
    "Hao",
    "Lan",
    "Qiang",
    "Mei",
    "Bo",
    "Na",
    "Kai",
    "Li",
]


DEMO_ADMIN = "admin"


async def ensure_admin(state: Platform, username: str = DEMO_ADMIN) -> str | None:
    """Create the platform admin ``username`` with a random password if there is no such
    user yet, and print the password (once). Returns it, or None if the user existed."""
    now = state.clock.now()
    async with state.db.transaction() as session:
        if await users.user_by_username(session, username) is not None:
            return None
        _user, password = await auth.create_user(
            session,
            state.settings,
            who=auth.system_principal("demo"),
            now=now,
            username=username,
            display_name="Demo admin",
            is_admin=True,
        )
    print(
        f"Demo admin: sign in as '{username}' with password {password}  "
        "(shown this once; change it with `formloom user set-password admin`)",
        flush=True,
    )
    return password


async def install_demo(state: Platform, *, patients: int = 40, seed: int = 7) -> None:
    now = state.clock.now()
    await ensure_admin(state)
    async with state.db.transaction() as session:
        await import_app(
            session, state.catalog, builtin_apps.load("clinic_crm"), actor="demo", now=now
        )
    async with state.db.transaction() as session:
        existing = await session.execute(
            select(func.count()).select_from(Record).where(Record.app == "clinic_crm")
        )
        if existing.scalar_one():
            return
        service = RecordService(session, state.catalog, actor="demo", now=now)
        team = await _seed(service, random.Random(seed), now.date(), patients)
        # the sample records were written on back-dated clocks: their birthday (and other
        # date) timers are armed from today, not from those days
        await rule_timers.rearm_dates(
            session, await state.catalog.get(session, "clinic_crm"), state.clock.now()
        )
    people = await ensure_role_users(state, team)
    await demo_flows.load(state, people, team)


#: The demo's two branches: (name, code, address, phone), both on Asia/Shanghai time. The
#: demo's people work at the first; a third of the patients belong to the second.
BRANCHES: tuple[tuple[str, str, str, str], ...] = (
    ("Xuhui", "XH", "1 Tianyaoqiao Road, Xuhui District, Shanghai", "+86 21 5555 0100"),
    ("Pudong", "PD", "88 Century Avenue, Pudong New Area, Shanghai", "+86 21 5555 0200"),
)
#: The branch (code) of the demo users who work at one: all but the head office.
DEMO_BRANCH = "XH"

#: The demo's users: (user name, clinic role, head nurse). One per clinic role, so that the
#: grants can be seen at work, and a surgeon and a head nurse, so that the flows' work
#: reaches someone: an MDT consultation asks two departments, and overdue follow-up calls
#: move to the head nurse. Those with a staff record (its ``username``) carry its id and
#: department, which the row filters and the flows' assignees read; every one but the head
#: office carries the id of the Xuhui branch (``branch``), so they see Xuhui's records only.
DEMO_USERS: tuple[tuple[str, str, bool], ...] = (
    ("demo_head_office", "head_office", False),
    ("demo_manager", "manager", False),
    ("demo_doctor", "doctor", False),
    ("demo_surgeon", "doctor", False),
    ("demo_nurse", "nurse", False),
    ("demo_head_nurse", "nurse", True),
    ("demo_front_desk", "front_desk", False),
)
#: One demo user per clinic role (the first of DEMO_USERS with it).
DEMO_ROLES = ("head_office", "manager", "doctor", "nurse", "front_desk")


async def ensure_role_users(
    state: Platform, team: list[tuple[str, str, str, str | None]]
) -> dict[str, Principal]:
    """The :data:`DEMO_USERS` (with a random password printed once), and who they are, for
    the demo's flows to act as them."""
    now = state.clock.now()
    async with state.db.transaction(write=False) as session:
        branches = {
            row.data.get("code"): (row.id, row.data.get("name"))
            for row in (
                await session.execute(
                    select(Record.id, Record.data).where(
                        Record.app == "clinic_crm",
                        Record.form == "branch",
                        Record.deleted_at.is_(None),
                    )
                )
            ).all()
        }
    branch_id, branch_name = branches[DEMO_BRANCH]
    people: dict[str, Principal] = {}
    for username, role, head_nurse in DEMO_USERS:
        attributes: dict[str, Any] = {}
        member = next((m for m in team if m[3] == username), None)
        if member is not None:
            attributes = {"staff_id": member[0], "department": member[2]}
        if role != "head_office":
            attributes["branch"] = branch_id
        if role == "nurse":
            attributes["head_nurse"] = head_nurse
        people[username] = Principal(
            username=username,
            roles={"clinic_crm": frozenset({role})},
            attributes=attributes,
            via="session",
        )
        async with state.db.transaction() as session:
            if await users.user_by_username(session, username) is not None:
                continue
            user, password = await auth.create_user(
                session,
                state.settings,
                who=auth.system_principal("demo"),
                now=now,
                username=username,
                display_name="Demo " + username.removeprefix("demo_").replace("_", " "),
                attributes=attributes,
            )
            await auth.set_roles(
                session,
                None,
                user,
                {"clinic_crm": [role]},
                who=auth.system_principal("demo"),
                now=now,
            )
        where = f", {branch_name}" if "branch" in attributes else ", all branches"
        where += f", {attributes['department']}" if "department" in attributes else ""
        where += ", head nurse" if head_nurse else ""
        print(
            f"Demo user: sign in as '{username}' ({role}{where}) with password {password}",
            flush=True,
        )
    return people


async def _after_visit(
    service: RecordService,
    rng: random.Random,
    today: date,
    visit: str,
    patient: str,
    department: str,
    day: date,
) -> None:
    """Follow-ups on day 3, 7 and 30 after some visits, and a survey after half of them."""
    if rng.random() < 0.5:
        for offset in (3, 7, 30):
            due = day + timedelta(days=offset)
            status = "pending" if due >= today else rng.choices(["done", "missed"], [4, 1])[0]
            await service.create(
                "clinic_crm",
                "follow_up",
                {
                    "visit": visit,
                    "patient": patient,
                    "department": department,
                    "due_date": due.isoformat(),
                    "status": status,
                },
            )
    if rng.random() < 0.5:
        nps = rng.choices(range(11), [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 9])[0]
        survey: dict[str, Any] = {
            "visit": visit,
            "nps": nps,
            "satisfaction": max(1, min(5, round(nps / 2) + rng.choice([-1, 0, 0, 1]))),
        }
        if nps <= 6:
            survey["comment"] = rng.choice(["Long wait", "Hard to book", "Unclear bill"])
        await service.create("clinic_crm", "survey", survey)


#: Staff records (by their place in the demo's team) that the demo users sign in as.
STAFF_USERS = {0: "demo_doctor", 2: "demo_surgeon", 6: "demo_nurse"}


async def _seed(
    service: RecordService, rng: random.Random, today: date, patients: int
) -> list[tuple[str, str, str, str | None]]:
    """Sample records; returns the staff as (record id, role, department, user name)."""
    started = service.now

    def local_time(day: date, hour: int, minute: int) -> str:
        """Office hours in the clinic's time zone (FORMLOOM_TIMEZONE), as the reports and
        rules read them."""
        return datetime(
            day.year, day.month, day.day, hour, minute, tzinfo=started.tzinfo
        ).isoformat()

    branches = [
        (
            await service.create(
                "clinic_crm",
                "branch",
                {
                    "name": name,
                    "code": code,
                    "address": address,
                    "phone": phone,
                    "timezone": "Asia/Shanghai",
                },
            )
        ).id
        for name, code, address, phone in BRANCHES
    ]
    home = branches[[code for _, code, _, _ in BRANCHES].index(DEMO_BRANCH)]
    team: list[tuple[str, str, str, str | None]] = []
    departments = ["general", "internal", "surgery", "pediatrics", "dermatology", "dental"]
    # (staff record id, department, branch) of the doctors
    staff: list[tuple[str, str, str]] = []
    for i in range(8):
        role = "doctor" if i < 6 else "nurse"
        department = departments[i % len(departments)]
        name = (
            f"Dr. {rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
            if role == "doctor"
            else (f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}")
        )
        member = {
            "name": name,
            "role": role,
            "department": department,
            "email": f"staff{i + 1}@clinic.example",
            "phone": f"+86 10 5555 {1000 + i}",
            # the demo users' staff records (even places) at home, the others alternate
            "branch": home if i % 2 == 0 else branches[-1],
        }
        if i in STAFF_USERS:
            member["username"] = STAFF_USERS[i]
        record = await service.create("clinic_crm", "staff", member)
        team.append((record.id, role, department, STAFF_USERS.get(i)))
        if role == "doctor":
            staff.append((record.id, department, member["branch"]))
    head_nurse = await service.create(
        "clinic_crm",
        "staff",
        {
            "name": "Lin Mei (head nurse)",
            "role": "nurse",
            "department": team[6][2],
            "email": "staff9@clinic.example",
            "phone": "+86 10 5555 1008",
            "username": "demo_head_nurse",
            "branch": home,
        },
    )
    team.append((head_nurse.id, "nurse", team[6][2], "demo_head_nurse"))
    # (doctor, start) already booked: the clinic's no-double-booking rule would refuse a
    # second appointment in the same slot (every demo slot is 30 minutes on a half hour)
    booked: set[tuple[str, str]] = set()

    def free_slot(doctor: str, make: Any) -> str:
        for _ in range(50):
            starts = str(make())
            if (doctor, starts) not in booked:
                booked.add((doctor, starts))
                return starts
        raise RuntimeError("no free demo slot")  # pragma: no cover - 50 tries of ~1400 slots

    patient_ids: list[str] = []
    patient_branch: dict[str, str] = {}
    for i in range(patients):
        # every fourth patient belongs to the other branch (the demo's flows need nine at home)
        branch = branches[-1] if i % 4 == 3 else home
        doctors_here = [s for s in staff if s[2] == branch] or staff
        tags = rng.sample(
            ["vip", "hypertension", "diabetes", "allergy", "chronic", "elderly"],
            k=rng.choice([0, 0, 1, 1, 2]),
        )
        data: dict[str, Any] = {
            "name": f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
            "gender": rng.choice(["female", "male"]),
            "birth_date": (today - timedelta(days=rng.randint(3 * 365, 85 * 365))).isoformat(),
            "phone": f"+86 139 {rng.randint(1000, 9999)} {i:04d}",
            "channel": rng.choice(["walk_in", "referral", "online", "wechat", "insurance"]),
            "tags": tags,
            "consent_marketing": rng.random() < 0.7,
            "primary_doctor": rng.choice(doctors_here)[0],
            "branch": branch,
        }
        if "allergy" in tags:
            data["allergies"] = rng.choice(["Penicillin", "Peanuts", "Latex"])
        if data["channel"] == "referral" and patient_ids:
            data["referred_by"] = rng.choice(patient_ids)
        # registered over the last six months, so that reports have a history
        service.now = started - timedelta(days=rng.randint(0, 180), hours=rng.randint(0, 9))
        patient_ids.append((await service.create("clinic_crm", "patient", data)).id)
        patient_branch[patient_ids[-1]] = branch
        service.now = started
    for patient in patient_ids:
        # the patient's doctors are their branch's; visits and bookings take the patient's
        # branch (the clinic's rules fill it in)
        doctors_here = [s for s in staff if s[2] == patient_branch[patient]] or staff
        for _ in range(rng.randint(0, 3)):
            doctor, department, _ = rng.choice(doctors_here)
            # a week ago or earlier: history, which starts no follow-up plan (the clinic's
            # rule starts plans for visits of the last 7 days; demo_flows adds recent ones)
            day = today - timedelta(days=rng.randint(8, 180))
            visit = {
                "patient": patient,
                "doctor": doctor,
                "department": department,
                "visit_date": day.isoformat(),
                "visit_type": rng.choice(["first", "follow_up", "treatment", "checkup"]),
                "complaint": rng.choice(["Headache", "Back pain", "Cough", "Rash", "Check-up"]),
                "systolic": rng.randint(100, 165),
                "diastolic": rng.randint(60, 100),
                "weight_kg": round(rng.uniform(45, 95), 1),
                "height_cm": round(rng.uniform(150, 190), 1),
                "procedures": [{"item": "Consultation", "quantity": 1, "unit_price": 80}],
                "total_fee": 80,
                "follow_up_needed": rng.random() < 0.4,
            }
            if visit["follow_up_needed"]:
                visit["follow_up_plan"] = rng.choice(["standard", "short", "chronic"])
            created = await service.create("clinic_crm", "visit", visit)
            await _after_visit(service, rng, today, created.id, patient, department, day)
        for _ in range(rng.randint(0, 2)):  # past appointments, some missed
            doctor, department, _ = rng.choice(doctors_here)
            status = rng.choices(["completed", "no_show", "cancelled"], [8, 2, 1])[0]
            past: dict[str, Any] = {
                "patient": patient,
                "doctor": doctor,
                "department": department,
                "starts_at": free_slot(
                    doctor,
                    lambda: local_time(
                        today - timedelta(days=rng.randint(1, 180)), rng.randint(9, 16), 30
                    ),
                ),
                "status": status,
            }
            if status == "cancelled":
                past["cancel_reason"] = "Patient rescheduled"
            await service.create("clinic_crm", "appointment", past)
        if rng.random() < 0.6:
            doctor, department, _ = rng.choice(doctors_here)
            slot = free_slot(
                doctor,
                lambda: local_time(
                    today + timedelta(days=rng.randint(1, 30)), rng.randint(9, 16), 0
                ),
            )
            await service.create(
                "clinic_crm",
                "appointment",
                {
                    "patient": patient,
                    "doctor": doctor,
                    "department": department,
                    "starts_at": slot,
                    "reason": "Follow-up consultation",
                },
            )
    return team
