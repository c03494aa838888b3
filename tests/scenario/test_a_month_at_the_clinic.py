"""A month of clinic life at two branches, played end to end through the HTTP API: the
clinic CRM's acceptance test (issue 14), on SQLite and PostgreSQL.

November 2026 at a clinic with two branches in Shanghai, Xuhui and Pudong. IT sets the
clinic up through the API (branches, staff, users with their branch and department, a
hospital system's integration with a signed webhook, one more rule added as data); the
front desks register patients and book appointments (a double booking is refused); patients
are reminded the evening before; a doctor records a visit and the nurse's pain score alerts
that doctor alone; a patient who does not come is marked a no-show; follow-up calls open on
day 3 and 7 for the nurses of the visit's branch; a discharged patient gets a text whose
link they answer on their phone without an account; a chronic patient is reminded to come
back, once, until she books; a birthday is greeted; a complaint goes through its work order
and e-mails the head office; and at the end of the month each manager's dashboard shows
their branch's numbers, which the story counts itself as it goes. Every role's view is
checked on the way: what front desk may not read, what another branch may not see.

The chapters below run in order on one deployment (``Clinic``, tests/scenario/clinic.py);
``Ledger`` keeps the story's own count of what happened, for the dashboards at the end.
Times are the clinic's (Asia/Shanghai); 2 November 2026 is a Monday.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email import message_from_string
from email.header import decode_header, make_header
from typing import Any

import pytest

from formloom import builtin_apps
from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests.conftest import TestUser, Users
from tests.scenario.clinic import (
    APP,
    Clinic,
    at,
    clinic_deployment,
    local,
    signed_by,
    survey_token,
)

# The people of the clinic: username -> (role, branch, staff record's name or None,
# department, extra attributes)
PEOPLE: dict[str, tuple[str, str | None, str | None, str | None, dict[str, Any]]] = {
    "dr_li": ("doctor", "XH", "Dr. Li", "general", {}),
    "dr_zhou": ("doctor", "XH", "Dr. Zhou", "surgery", {}),
    "nurse_wu": ("nurse", "XH", "Nurse Wu", "general", {"head_nurse": False}),
    "hn_chen": ("nurse", "XH", "Head Nurse Chen", "general", {"head_nurse": True}),
    "desk_xh": ("front_desk", "XH", None, None, {}),
    "mgr_xh": ("manager", "XH", None, None, {}),
    "dr_sun": ("doctor", "PD", "Dr. Sun", "general", {}),
    "nurse_ma": ("nurse", "PD", "Nurse Ma", "general", {"head_nurse": True}),
    "desk_pd": ("front_desk", "PD", None, None, {}),
    "mgr_pd": ("manager", "PD", None, None, {}),
    "ho_lin": ("head_office", None, None, None, {"email": "lin@clinic.example.com"}),
}


@dataclass
class Ledger:
    """What the story did, counted by the story: the dashboards must agree with it."""

    branch: dict[str, str] = field(default_factory=dict)  # code -> branch record id
    staff: dict[str, str] = field(default_factory=dict)  # username -> staff record id
    patients: dict[str, str] = field(default_factory=dict)  # name -> record id
    phones: dict[str, str] = field(default_factory=dict)  # name -> phone
    home: dict[str, str] = field(default_factory=dict)  # patient name -> branch code
    appointments: dict[str, str] = field(default_factory=dict)  # patient name -> record id
    visits: dict[str, str] = field(default_factory=dict)  # patient name -> record id
    his_secret: str = ""
    # per branch code: what the dashboards count
    new_patients: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})
    held: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})  # took place
    no_shows: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})
    follow_ups_due: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})
    follow_ups_done: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})
    nps: dict[str, list[int]] = field(default_factory=lambda: {"XH": [], "PD": []})
    visits_in: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})
    revisits: dict[str, int] = field(default_factory=lambda: {"XH": 0, "PD": 0})
    hours_to_close: dict[str, list[float]] = field(default_factory=lambda: {"XH": [], "PD": []})

    def where(self, name: str) -> str:
        return self.home[name]


@pytest.fixture
async def clinic(settings: Settings, clock: FixedClock, users: Users, admin: TestUser) -> Any:
    async with clinic_deployment(settings, clock, users) as deployment:
        yield deployment


async def test_a_month_at_the_clinic(clinic: Clinic) -> None:
    story = Ledger()
    await it_sets_up_the_clinic(clinic, story)
    await the_front_desks_register_and_book(clinic, story)
    await the_evening_before(clinic, story)
    await the_day_of_the_appointments(clinic, story)
    await a_discharged_patient_answers_the_survey(clinic, story)
    await a_chronic_patient_is_reminded_to_come_back(clinic, story)
    await the_day_3_calls(clinic, story)
    await a_complaint_is_worked_and_closed(clinic, story)
    await a_birthday_and_the_day_7_checks(clinic, story)
    await liu_yang_comes_back(clinic, story)
    await every_role_sees_what_it_may(clinic, story)
    await the_month_on_the_dashboards(clinic, story)


# ---------------------------------------------------------------------------------------
# Monday 2 November, 08:00: IT sets the clinic up
# ---------------------------------------------------------------------------------------

COMPLAINT_EMAIL = {
    "key": "serious_complaint_email",
    "label": {"en": "E-mail the head office about serious complaints", "zh-CN": "严重投诉邮件"},
    "on": {"form": "complaint", "event": "updated", "fields": ["severity"], "to": ["high"]},
    "then": [
        {
            "type": "notify",
            "channel": "email",
            "recipients": [{"role": "head_office"}],
            "subject": {
                "en": "Serious complaint: {{ record.summary }}",
                "zh-CN": "严重投诉：{{ record.summary }}",
            },
            "template": {
                "en": "{{ record.summary }} ({{ record.branch.name }}), registered "
                "{{ record.registered_at | datetime }}.",
                "zh-CN": "{{ record.summary }}（{{ record.branch.name }}），登记于 "
                "{{ record.registered_at | datetime }}。",
            },
        }
    ],
}


async def it_sets_up_the_clinic(clinic: Clinic, story: Ledger) -> None:
    clinic.clock.at = at("2026-11-02 08:00")
    installed = await clinic.call("admin", "POST", "/api/apps/import", builtin_apps.load(APP))
    assert installed.status_code == 201, installed.text
    for code, name in (("XH", "Xuhui"), ("PD", "Pudong")):
        story.branch[code] = await clinic.create(
            "admin", "branch", name=name, code=code, timezone="Asia/Shanghai"
        )
    for username, (role, branch, staff_name, department, extra) in PEOPLE.items():
        attributes: dict[str, Any] = dict(extra)
        if branch:
            attributes["branch"] = story.branch[branch]
        if department:
            attributes["department"] = department
        if staff_name:
            story.staff[username] = await clinic.create(
                "admin", "staff", name=staff_name, role=role, department=department,
                branch=story.branch[branch or "XH"], username=username,
            )  # fmt: skip
            attributes["staff_id"] = story.staff[username]
        await clinic.ok("admin", "POST", "/api/users", {
            "username": username, "display_name": staff_name or username,
            "attributes": attributes})  # fmt: skip
        await clinic.ok("admin", "PUT", f"/api/users/{username}/roles", {APP: [role]})

    # the hospital system: a service account that registers patients at Pudong, and a
    # signed webhook of every visit written
    await clinic.ok("admin", "POST", "/api/users", {"username": "his_bridge", "service": True,
                    "attributes": {"branch": story.branch["PD"]}})  # fmt: skip
    await clinic.ok("admin", "PUT", "/api/users/his_bridge/roles", {APP: ["front_desk"]})
    token = await clinic.ok("admin", "POST", "/api/users/his_bridge/tokens",
                            {"name": "HIS", "app": APP, "days": 365})  # fmt: skip
    clinic.service_tokens["his_bridge"] = token["token"]
    hook = await clinic.ok("admin", "POST", f"/api/apps/{APP}/webhooks", {
        "url": f"{clinic.outside.his.url}/his/visits", "events": ["record.created",
        "record.updated"], "form": "visit", "fields": ["patient", "visit_date", "pain_score",
        "department"]})  # fmt: skip
    story.his_secret = hook["secret"]

    # the head office wants an e-mail about every serious complaint: one more rule, added
    # as data (export, add, a dry run that says what changes, import)
    exported = await clinic.ok("admin", "GET", f"/api/apps/{APP}/export")
    exported["rules"].append(COMPLAINT_EMAIL)
    dry = await clinic.ok("admin", "POST", "/api/apps/import", exported, dry_run="true")
    assert dry["dry_run"] is True
    assert "serious_complaint_email" in json.dumps(dry)
    await clinic.ok("admin", "POST", "/api/apps/import", exported)


# ---------------------------------------------------------------------------------------
# Monday 2 November: registrations and bookings
# ---------------------------------------------------------------------------------------


async def register(
    clinic: Clinic, story: Ledger, who: str, name: str, phone: str, **data: Any
) -> None:
    story.patients[name] = await clinic.create(who, "patient", name=name, phone=phone, **data)
    story.phones[name] = phone
    story.home[name] = "PD" if who in ("desk_pd", "his_bridge") else "XH"
    story.new_patients[story.home[name]] += 1


async def book(
    clinic: Clinic, story: Ledger, who: str, name: str, doctor: str, starts: str
) -> None:
    story.appointments[name] = await clinic.create(
        who, "appointment", patient=story.patients[name], doctor=story.staff[doctor],
        department=PEOPLE[doctor][3], starts_at=at(starts).isoformat(), duration_minutes=30,
    )  # fmt: skip


async def the_front_desks_register_and_book(clinic: Clinic, story: Ledger) -> None:
    clinic.clock.at = at("2026-11-02 09:00")
    await register(clinic, story, "desk_xh", "Chen Jing", "+8613800000001",
                   consent_marketing=True, tags=["hypertension"], channel="walk_in")  # fmt: skip
    await register(clinic, story, "desk_xh", "He Li", "+8613800000002",
                   consent_marketing=True, birth_date="1980-11-10")  # fmt: skip
    await register(clinic, story, "desk_xh", "Wang Fang", "+8613800000003")  # no consent
    await register(clinic, story, "desk_xh", "Liu Yang", "+8613800000004",
                   consent_marketing=True, tags=["diabetes"])  # fmt: skip
    await register(clinic, story, "desk_pd", "Zhao Lei", "+8613900000001",
                   consent_marketing=True)  # fmt: skip
    # the hospital system registers one too, as itself
    await register(clinic, story, "his_bridge", "Sun Mei", "+8613900000002")
    sun_mei = await clinic.ok("admin", "GET", f"/api/records/{APP}/patient/"
                              f"{story.patients['Sun Mei']}")  # fmt: skip
    assert sun_mei["created_by"] == "his_bridge"
    assert sun_mei["data"]["branch"] == story.branch["PD"]
    for name in ("Chen Jing", "He Li", "Wang Fang", "Liu Yang"):
        assert (await clinic.read("desk_xh", "patient", story.patients[name]))["branch"] == (
            story.branch["XH"]
        )

    # Liu Yang's paper record: a visit in August, typed in by her doctor (history starts no
    # follow-up plan), so her last visit is 84 days ago today
    story.visits["Liu Yang in August"] = await clinic.create(
        "dr_li", "visit", patient=story.patients["Liu Yang"], doctor=story.staff["dr_li"],
        department="general", visit_date="2026-08-10", visit_type="first",
        follow_up_needed=True, follow_up_plan="chronic",
    )  # fmt: skip
    assert (await clinic.read("dr_li", "patient", story.patients["Liu Yang"]))[
        "last_visit"
    ] == "2026-08-10"

    # Tuesday's bookings; Dr. Li cannot see two patients at once
    await book(clinic, story, "desk_xh", "Chen Jing", "dr_li", "2026-11-03 10:00")
    clash = await clinic.call(
        "desk_xh", "POST", f"/api/records/{APP}/appointment",
        {"data": {"patient": story.patients["He Li"], "doctor": story.staff["dr_li"],
                  "department": "general", "starts_at": at("2026-11-03 10:15").isoformat(),
                  "duration_minutes": 30}},
        locale="zh-CN",
    )  # fmt: skip
    assert clash.status_code == 422, clash.text
    (error,) = clash.json()["errors"]
    assert error["path"] == "/starts_at"
    assert error["messages"]["zh-CN"] == "该医生在此时间已有预约。"
    await book(clinic, story, "desk_xh", "He Li", "dr_li", "2026-11-03 10:30")
    await book(clinic, story, "desk_xh", "Wang Fang", "dr_zhou", "2026-11-03 11:00")
    await book(clinic, story, "desk_pd", "Zhao Lei", "dr_sun", "2026-11-03 09:00")
    # Xuhui's front desk cannot book Pudong's patient: to her that patient does not exist
    other = await clinic.call(
        "desk_xh", "POST", f"/api/records/{APP}/appointment",
        {"data": {"patient": story.patients["Zhao Lei"], "doctor": story.staff["dr_li"],
                  "department": "general", "starts_at": at("2026-11-03 15:00").isoformat()}},
    )  # fmt: skip
    assert other.status_code == 422 and "Zhao" not in other.text
    # the appointments read on the clinic's clock on the patients' pages
    chen = await clinic.around("desk_xh", "patient", story.patients["Chen Jing"])
    assert chen["appointment"] == ["2026-11-03 10:00"]
    zhao = await clinic.around("desk_pd", "patient", story.patients["Zhao Lei"])
    assert zhao["appointment"] == ["2026-11-03 09:00"]


# ---------------------------------------------------------------------------------------
# Monday 2 November, 18:00: reminders for tomorrow
# ---------------------------------------------------------------------------------------


async def the_evening_before(clinic: Clinic, story: Ledger) -> None:
    await clinic.tick("2026-11-02 17:59")
    assert clinic.outside.texted() == []
    await clinic.tick("2026-11-02 18:00")
    # only patients who agreed to texts: not Wang Fang
    assert sorted(clinic.outside.texted()) == sorted(
        story.phones[name] for name in ("Chen Jing", "He Li", "Zhao Lei")
    )
    (text,) = clinic.outside.texts_to(story.phones["Chen Jing"])
    assert text.startswith("Dear Chen Jing, a reminder of your appointment tomorrow at 10:00")
    assert "with Dr. Li" in text


# ---------------------------------------------------------------------------------------
# Tuesday 3 November: the appointments
# ---------------------------------------------------------------------------------------


async def see(clinic: Clinic, story: Ledger, doctor: str, name: str, **data: Any) -> str:
    """``doctor`` records today's visit of ``name`` for the patient's appointment."""
    visit = await clinic.create(
        doctor, "visit", patient=story.patients[name], doctor=story.staff[doctor],
        appointment=story.appointments[name], department=PEOPLE[doctor][3],
        visit_date=clinic.clock.now().date().isoformat(), **data,
    )  # fmt: skip
    story.visits[name] = visit
    story.visits_in[story.where(name)] += 1
    story.held[story.where(name)] += 1
    return visit


async def the_day_of_the_appointments(clinic: Clinic, story: Ledger) -> None:
    # 09:10, Pudong: Zhao Lei comes; Dr. Sun plans the short follow-up (a day-3 call)
    clinic.clock.at = at("2026-11-03 09:10")
    zhao = await see(clinic, story, "dr_sun", "Zhao Lei", visit_type="first", pain_score=2,
                     follow_up_needed=True, follow_up_plan="short")  # fmt: skip
    appointment = await clinic.read("desk_pd", "appointment", story.appointments["Zhao Lei"])
    assert appointment["status"] == "completed"  # the visit completes its appointment

    # 10:05, Xuhui: Chen Jing, the standard plan (day 3, 7, 30 and 90)
    clinic.clock.at = at("2026-11-03 10:05")
    chen = await see(clinic, story, "dr_li", "Chen Jing", visit_type="first", pain_score=3,
                     diagnosis="Essential hypertension", follow_up_needed=True,
                     follow_up_plan="standard")  # fmt: skip
    planned = await clinic.query("admin", "follow_up", {"==": [{"var": "visit"}, chen]})
    assert sorted((f["checkpoint"], f["due_date"], f["status"]) for f in planned) == [
        ("day3", "2026-11-06", "pending"), ("day30", "2026-12-03", "pending"),
        ("day7", "2026-11-10", "pending"), ("day90", "2027-02-01", "pending"),
    ]  # fmt: skip
    assert {f["branch"] for f in planned} == {story.branch["XH"]}

    # the hospital system has received every visit written, signed, numbers as numbers
    await clinic.tick("2026-11-03 10:06")
    received = clinic.outside.his.requests
    history = story.visits["Liu Yang in August"]
    assert [r.body["record_id"] for r in received] == [history, zhao, chen]
    assert all(signed_by(r, story.his_secret) for r in received)
    assert [r.body["data"].get("pain_score") for r in received] == [None, 2, 3]
    assert "diagnosis" not in received[2].body["data"]  # only the fields subscribed to

    # 10:40: the nurse enters the vitals by editing the visit: pain 8 alerts the treating
    # doctor, naming the patient, and no other doctor
    clinic.clock.at = at("2026-11-03 10:40")
    await clinic.update("nurse_wu", "visit", chen, pain_score=8)
    await clinic.tick("2026-11-03 10:41")
    assert await clinic.notes("dr_li") == ["Pain score 8/10: Chen Jing"]
    assert await clinic.notes("dr_zhou") == [] and await clinic.notes("dr_sun") == []
    assert received[-1].body["event"] == "record.updated"
    assert received[-1].body["data"]["pain_score"] == 8

    # 11:05: Wang Fang sees the surgeon
    clinic.clock.at = at("2026-11-03 11:05")
    await see(clinic, story, "dr_zhou", "Wang Fang", visit_type="first")

    # He Li never comes: her 10:30 booking ends at 11:00, and 30 minutes later the clinic's
    # every-15-minutes check marks it
    await clinic.tick("2026-11-03 11:30")
    he_li = story.appointments["He Li"]
    assert (await clinic.read("desk_xh", "appointment", he_li))["status"] == "booked"
    await clinic.tick("2026-11-03 11:45")
    assert (await clinic.read("desk_xh", "appointment", he_li))["status"] == "no_show"
    story.held["XH"] += 1
    story.no_shows["XH"] += 1
    assert (await clinic.read("desk_xh", "patient", story.patients["He Li"])).get(
        "next_appointment_at"
    ) is None


# ---------------------------------------------------------------------------------------
# Wednesday 4 - Thursday 5 November: a discharge and its survey
# ---------------------------------------------------------------------------------------


async def a_discharged_patient_answers_the_survey(clinic: Clinic, story: Ledger) -> None:
    clinic.clock.at = at("2026-11-04 16:00")
    await clinic.update("dr_li", "patient", story.patients["Chen Jing"],
                        discharged_at=at("2026-11-04 15:30").isoformat())  # fmt: skip
    await clinic.update("dr_zhou", "patient", story.patients["Wang Fang"],
                        discharged_at=at("2026-11-04 12:00").isoformat())  # fmt: skip
    before = len(clinic.outside.sms.requests)
    await clinic.tick("2026-11-05 15:29")
    assert len(clinic.outside.sms.requests) == before  # 24 hours after, not before
    await clinic.tick("2026-11-05 15:30")
    # Wang Fang did not agree to texts: only Chen Jing's phone rings
    assert clinic.outside.texted()[before:] == [story.phones["Chen Jing"]]
    text = clinic.outside.texts_to(story.phones["Chen Jing"])[-1]
    token = survey_token(text)
    chen = story.patients["Chen Jing"]
    (call,) = [t for t in await clinic.inbox("desk_xh") if t["record_id"] == chen]
    assert call["title"] == "Satisfaction survey: Chen Jing"
    assert "2026-11-04 15:30" in call["description"]  # the clinic's clock, not UTC
    # Pudong's front desk is not asked to call Xuhui's patient
    assert [t for t in await clinic.inbox("desk_pd") if t["record_id"] == chen] == []

    # the patient opens the link on her phone, in Chinese, without an account, and answers
    clinic.clock.at = at("2026-11-05 19:12")
    page = await clinic.anonymous.get(f"/p/{token}", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and 'lang="zh-CN"' in page.text
    answer = {"data": {"nps": 10, "satisfaction": 5, "comment": "护士很耐心"}}
    sent = await clinic.anonymous.post(f"/api/public/{token}", json=answer)
    assert sent.status_code == 201, sent.text
    again = await clinic.anonymous.post(f"/api/public/{token}", json=answer)
    assert again.status_code == 410  # one answer per link
    story.nps["XH"].append(10)
    # the front desk's call closes itself; the answer is on the patient's page
    assert [t for t in await clinic.inbox("desk_xh") if t["record_id"] == chen] == []
    around = await clinic.around("desk_xh", "patient", chen)
    assert len(around["survey"]) == 1


# ---------------------------------------------------------------------------------------
# A chronic patient is reminded to come back
# ---------------------------------------------------------------------------------------


async def a_chronic_patient_is_reminded_to_come_back(clinic: Clinic, story: Ledger) -> None:
    # Liu Yang (diabetes) was last seen on 10 August: 85 days on Tuesday 3 November, when
    # the 09:00 reminders went out (the worker's first round that day was at 10:06)
    (text,) = clinic.outside.texts_to(story.phones["Liu Yang"])
    assert text == ("Dear Liu Yang, your last check-up was 2026-08-10. It is time for your "
                    "follow-up visit: please book an appointment.")  # fmt: skip
    # Wednesday's and Thursday's rounds did not text her again; on Thursday evening she
    # calls to book for Thursday 12 November
    clinic.clock.at = at("2026-11-05 19:30")
    await book(clinic, story, "desk_xh", "Liu Yang", "dr_li", "2026-11-12 14:00")
    assert (await clinic.read("desk_xh", "patient", story.patients["Liu Yang"]))[
        "next_appointment_at"
    ] == "2026-11-12T06:00:00Z"


async def liu_yang_comes_back(clinic: Clinic, story: Ledger) -> None:
    await clinic.tick("2026-11-11 18:00")
    assert "tomorrow at 14:00" in clinic.outside.texts_to(story.phones["Liu Yang"])[-1]
    clinic.clock.at = at("2026-11-12 14:10")
    await see(clinic, story, "dr_li", "Liu Yang", visit_type="follow_up")
    story.revisits["XH"] += 1
    assert len(clinic.outside.texts_to(story.phones["Liu Yang"])) == 2


# ---------------------------------------------------------------------------------------
# Friday 6 November: the day-3 calls
# ---------------------------------------------------------------------------------------


async def the_day_3_calls(clinic: Clinic, story: Ledger) -> None:
    await clinic.tick("2026-11-06 00:00")
    # each branch's nurses get their own branch's call, nobody else's
    wu = [t for t in await clinic.inbox("nurse_wu") if t["node"] == "call_day3"]
    ma = [t for t in await clinic.inbox("nurse_ma") if t["node"] == "call_day3"]
    assert [t["record_id"] for t in wu] == [story.visits["Chen Jing"]]
    assert [t["record_id"] for t in ma] == [story.visits["Zhao Lei"]]
    assert local(wu[0]["due"]) == "2026-11-06 17:30"
    clinic.clock.at = at("2026-11-06 10:00")
    await clinic.do("nurse_wu", "call_day3", story.visits["Chen Jing"], outcome="reached",
                    values={"followup_pain": 2, "wound_problem": False,
                            "followup_note": "Blood pressure fine at home"})  # fmt: skip
    await clinic.do("nurse_ma", "call_day3", story.visits["Zhao Lei"], outcome="unreachable",
                    comment="No answer twice")  # fmt: skip
    story.follow_ups_due["XH"] += 1
    story.follow_ups_done["XH"] += 1
    story.follow_ups_due["PD"] += 1
    day3 = await clinic.query("nurse_ma", "follow_up", {"==": [{"var": "checkpoint"}, "day3"]})
    assert [(f["visit"], f["status"], f["handled_by"]) for f in day3] == [
        (story.visits["Zhao Lei"], "missed", "nurse_ma")
    ]
    (chen,) = await clinic.query("nurse_wu", "follow_up", {"==": [{"var": "checkpoint"}, "day3"]})
    assert (chen["status"], chen["handled_by"], chen["pain"]) == ("done", "nurse_wu", 2)


# ---------------------------------------------------------------------------------------
# Friday 6 - Monday 9 November: a complaint at Pudong
# ---------------------------------------------------------------------------------------


def mail_text(raw: str) -> tuple[str, str]:
    """The subject and the plain-text body of an e-mail as sent."""
    message = message_from_string(raw)
    subject = str(make_header(decode_header(message["Subject"])))
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return subject, payload.decode(part.get_content_charset() or "utf-8")


async def a_complaint_is_worked_and_closed(clinic: Clinic, story: Ledger) -> None:
    clinic.clock.at = at("2026-11-06 10:30")
    zhao = story.patients["Zhao Lei"]
    complaint = await clinic.create(
        "desk_pd", "complaint", summary="Charged twice for one visit", patient=zhao,
        phone=story.phones["Zhao Lei"], channel="phone",
        description="The bill shows the consultation twice.",
    )  # fmt: skip
    # Pudong's managers sort it out; Xuhui's manager is not asked
    assert [t for t in await clinic.inbox("mgr_xh") if t["record_id"] == complaint] == []
    await clinic.do("mgr_pd", "classify", complaint, outcome="assigned", values={
        "category": "billing", "severity": "high", "department": "general",
        "handler": story.staff["dr_sun"]})  # fmt: skip

    # a serious complaint: the head office gets an e-mail (the rule IT added on day one)
    await clinic.tick("2026-11-06 10:31")
    (mail,) = clinic.outside.mail.mails
    assert mail.recipients == ["lin@clinic.example.com"]
    subject, body = mail_text(mail.data)
    assert subject == "Serious complaint: Charged twice for one visit"
    assert body.strip() == "Charged twice for one visit (Pudong), registered 2026-11-06 10:30."

    # the handler resolves it, the manager approves, the patient is told by text
    clinic.clock.at = at("2026-11-06 15:00")
    await clinic.do("dr_sun", "handle", complaint, outcome="resolved",
                    values={"resolution": "The second charge was refunded."})  # fmt: skip
    clinic.clock.at = at("2026-11-09 09:00")
    await clinic.do("mgr_pd", "review", complaint, outcome="approve")
    await clinic.tick("2026-11-09 09:01")
    told = clinic.outside.texts_to(story.phones["Zhao Lei"])[-1]
    assert told.startswith('Thank you for telling us about "Charged twice for one visit"')
    assert (await clinic.read("mgr_pd", "complaint", complaint))["status"] == "closed"
    story.hours_to_close["PD"].append(70.5)  # Friday 10:30 to Monday 09:00
    clinic.clock.at = at("2026-11-09 11:00")
    await clinic.do("desk_pd", "satisfaction_call", complaint, outcome="answered",
                    values={"satisfaction": 4})  # fmt: skip
    (instance,) = (await clinic.ok("admin", "GET", "/api/flow-instances", app=APP,
                                   record_id=complaint))["items"]  # fmt: skip
    assert instance["status"] == "completed"


# ---------------------------------------------------------------------------------------
# Tuesday 10 November: a birthday and the day-7 check
# ---------------------------------------------------------------------------------------


async def a_birthday_and_the_day_7_checks(clinic: Clinic, story: Ledger) -> None:
    await clinic.tick("2026-11-10 00:00")
    chen = story.visits["Chen Jing"]
    check = await clinic.task("nurse_wu", "check_day7", chen)
    assert local(check["due"]) == "2026-11-10 17:30"
    await clinic.tick("2026-11-10 09:00")
    assert clinic.outside.texts_to(story.phones["He Li"])[-1] == (
        "Happy birthday, He Li! Best wishes from your clinic."
    )
    clinic.clock.at = at("2026-11-10 10:00")
    await clinic.do("nurse_wu", "check_day7", chen, outcome="reached", values={
        "followup_pain": 1, "wound_problem": False, "followup_note": "Feels well"})  # fmt: skip
    story.follow_ups_due["XH"] += 1
    story.follow_ups_done["XH"] += 1


# ---------------------------------------------------------------------------------------
# Friday 13 November: what each role sees
# ---------------------------------------------------------------------------------------


async def every_role_sees_what_it_may(clinic: Clinic, story: Ledger) -> None:
    clinic.clock.at = at("2026-11-13 10:00")
    chen_visit = story.visits["Chen Jing"]
    # front desk sees the visit for billing, not its clinical content
    seen = await clinic.read("desk_xh", "visit", chen_visit)
    assert seen["visit_type"] == "first"
    assert not {"pain_score", "diagnosis", "complaint"} & set(seen)
    assert (await clinic.read("dr_li", "visit", chen_visit))["diagnosis"] == (
        "Essential hypertension"
    )
    # nurses read no identity numbers; managers no allergies or notes
    await clinic.update("dr_li", "patient", story.patients["Chen Jing"],
                        allergies="Penicillin")  # fmt: skip
    assert "id_number" not in await clinic.read("nurse_wu", "patient", story.patients["He Li"])
    assert "allergies" not in await clinic.read("mgr_xh", "patient", story.patients["Chen Jing"])
    # another department's doctor does not see a general practice visit
    refused = await clinic.call("dr_zhou", "GET", f"/api/records/{APP}/visit/{chen_visit}")
    assert refused.status_code in (403, 404)
    # nobody sees the other branch's patients, by any door
    for who, other in (("desk_xh", "Zhao Lei"), ("nurse_wu", "Zhao Lei"),
                       ("mgr_xh", "Sun Mei"), ("dr_sun", "Chen Jing"),
                       ("nurse_ma", "Chen Jing"), ("desk_pd", "He Li")):  # fmt: skip
        path = f"/api/records/{APP}/patient/{story.patients[other]}"
        assert (await clinic.call(who, "GET", path)).status_code in (403, 404), (who, other)
        assert (await clinic.call(who, "GET", path + "/related")).status_code in (403, 404)
    for who, branches in (("mgr_xh", ["XH"]), ("mgr_pd", ["PD"]), ("ho_lin", ["XH", "PD"])):
        listed = await clinic.ok(who, "GET", f"/api/records/{APP}/patient", limit=100)
        assert sorted(item["data"]["name"] for item in listed["items"]) == sorted(
            name for name, code in story.home.items() if code in branches
        ), who
    # the survey Chen Jing answered is Xuhui's
    assert len((await clinic.ok("desk_xh", "GET", f"/api/records/{APP}/survey"))["items"]) == 1
    assert (await clinic.ok("desk_pd", "GET", f"/api/records/{APP}/survey"))["items"] == []
    # the hospital system's account acts as itself, in the audit log too
    audit = await clinic.ok("admin", "GET", "/api/audit", actor="his_bridge")
    assert audit["items"] and {e["actor"] for e in audit["items"]} == {"his_bridge"}


# ---------------------------------------------------------------------------------------
# Wednesday 2 December: the month on the managers' dashboards
# ---------------------------------------------------------------------------------------


def total(tile: dict[str, Any]) -> dict[str, Any]:
    return dict(tile["result"]["grand_total"]["values"])


def by_row(tile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = tile["result"]
    return {
        row["labels"][0]: dict(totals["values"])
        for row, totals in zip(result["rows"], result["row_totals"], strict=True)
    }


def rate(part: int, whole: int) -> Any:
    return pytest.approx(100 * part / whole) if whole else None


async def the_month_on_the_dashboards(clinic: Clinic, story: Ledger) -> None:
    await clinic.tick("2026-12-02 09:00")
    # Liu Yang came back: no revisit reminder a month after the first
    assert len(clinic.outside.texts_to(story.phones["Liu Yang"])) == 2
    november = {"period_from": "2026-11-01", "period_to": "2026-11-30"}
    names = {"XH": "Xuhui", "PD": "Pudong"}
    for who, codes in (("mgr_xh", ["XH"]), ("mgr_pd", ["PD"]), ("ho_lin", ["XH", "PD"])):
        tiles = await clinic.dashboard(who, **november)
        assert by_row(tiles["patients_by_branch"]) == {
            names[c]: {"patients": story.new_patients[c]} for c in codes
        }, who
        held = sum(story.held[c] for c in codes)
        no_shows = sum(story.no_shows[c] for c in codes)
        shows = total(tiles["no_show_rate"])
        assert (shows["appointments"], shows["no_shows"]) == (held, no_shows), who
        assert shows["rate"] == rate(no_shows, held), who
        due = sum(story.follow_ups_due[c] for c in codes)
        done = sum(story.follow_ups_done[c] for c in codes)
        completion = total(tiles["follow_up_completion"])
        assert (completion["due"], completion["done"]) == (due, done), who
        assert completion["rate"] == rate(done, due), who
        scores = [score for c in codes for score in story.nps[c]]
        nps = total(tiles["nps_by_department"])
        assert nps["responses"] == len(scores), who
        if scores:
            promoters = sum(score >= 9 for score in scores)
            detractors = sum(score <= 6 for score in scores)
            assert nps["nps"] == rate(promoters - detractors, len(scores)), who
        visits = total(tiles["visits_by_branch"])
        assert visits["visits"] == sum(story.visits_in[c] for c in codes), who
        visits, revisits = (
            sum(count[c] for c in codes) for count in (story.visits_in, story.revisits)
        )
        assert total(tiles["revisit_rate"])["revisits"] == revisits, who
        assert total(tiles["revisit_rate"])["rate"] == rate(revisits, visits), who
        spent = [hours for c in codes for hours in story.hours_to_close[c]]
        if spent:
            closing = total(tiles["complaint_time_to_close"])
            assert closing["closed"] == len(spent), who
            assert closing["avg_hours"] == pytest.approx(sum(spent) / len(spent)), who
        else:
            assert tiles["complaint_time_to_close"]["result"]["rows"] == [], who
        complaints = total(tiles["complaints_by_category"]) if tiles[
            "complaints_by_category"]["result"]["rows"] else {"complaints": 0}  # fmt: skip
        assert complaints["complaints"] == (1 if "PD" in codes else 0), who
    # the head office narrows the board to one branch
    pudong = await clinic.dashboard("ho_lin", branch=story.branch["PD"], **november)
    assert by_row(pudong["patients_by_branch"]) == {"Pudong": {"patients": 2}}
