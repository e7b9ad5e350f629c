"""A clearly labelled, deterministic demo data set at about the scale of ASI's programme."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pycountry
from sqlalchemy import false, func, insert, select
from sqlalchemy.orm import Session

from outcomes import models as m

SEED = 2015
CLASS_SIZES = {
    "Production & Transformation": 95,
    "Industrial Users": 55,
    "Civil Society": 15,
    "Downstream Supporters": 40,
    "Associations": 15,
    "General Supporters": 30,
}
# ~55 countries where members and their facilities sit.
MEMBER_COUNTRIES = tuple(
    "AE AR AU AT BH BE BR CA CL CN CZ DK EG FI FR DE GH GN GR HU IS IN ID IE IT JM JP KZ "
    "KR MY MX MZ NL NZ NO OM PL PT QA RO RU SA SG SK SI ZA ES SE CH TH TR GB US VN".split()
)
EXTERNAL = (
    ("ISO14001", "ISO 14001 Environmental management"),
    ("ISO45001", "ISO 45001 Occupational health and safety"),
    ("ISO37001", "ISO 37001 Anti-bribery management"),
    ("ISO50001", "ISO 50001 Energy management"),
    ("SA8000", "SA8000 Social accountability"),
)
SURVEY_YEARS = range(2021, 2026)
QUESTIONS: tuple[dict[str, Any], ...] = (
    {
        "key": "employees",
        "label": "People employed at year end",
        "type": "integer",
        "unit": "people",
        "minimum": 0,
        "maximum": 500000,
        "required": True,
        "aggregation": "sum",
    },
    {
        "key": "women_share",
        "label": "Share of women in the workforce",
        "type": "decimal",
        "unit": "%",
        "minimum": 0,
        "maximum": 100,
        "required": True,
        "aggregation": "mean",
    },
    {
        "key": "renewable_share",
        "label": "Share of renewable electricity",
        "type": "decimal",
        "unit": "%",
        "minimum": 0,
        "maximum": 100,
        "required": False,
        "aggregation": "median",
    },
    {
        "key": "ghg_scope1",
        "label": "Scope 1 greenhouse-gas emissions",
        "type": "decimal",
        "unit": "t CO2e",
        "minimum": 0,
        "maximum": 1e9,
        "required": False,
        "aggregation": "sum",
    },
    {
        "key": "human_rights_policy",
        "label": "Has a public human rights policy",
        "type": "boolean",
        "unit": "",
        "minimum": None,
        "maximum": None,
        "required": True,
        "aggregation": "share_yes",
    },
    {
        "key": "comments",
        "label": "Anything else we should know",
        "type": "text",
        "unit": "",
        "minimum": None,
        "maximum": None,
        "required": False,
        "aggregation": "none",
    },
)


def is_empty(session: Session) -> bool:
    """Tell whether the database holds no members yet."""
    return not session.scalar(select(func.count()).select_from(m.Member))


def load_demo(session: Session, *, today: date | None = None) -> dict[str, int]:
    """Insert the demo data set (the caller commits) and return how many rows of each kind."""
    rng = random.Random(SEED)  # noqa: S311 (reproducible demo data, not secrets)
    today = today or date.today()
    session.merge(m.SiteFlag(name="demo", value="true"))
    members = _members(rng, today)
    facilities = _facilities(rng, members)
    firms, firm_countries = _firms(rng)
    externals = [
        {"id": i, "code": code, "name": name, "valid_from": date(2015, 1, 1), "valid_until": None}
        for i, (code, name) in enumerate(EXTERNAL, start=1)
    ]
    certificates, covered, leveraged = _certificates(rng, members, facilities, firms, today)
    rows: dict[Any, list[dict[str, Any]]] = {
        m.Member: members,
        m.Facility: facilities,
        m.AuditingFirm: firms,
        m.auditing_firm_country: firm_countries,
        m.ExternalCertification: externals,
        m.Certificate: certificates,
        m.certificate_facility: covered,
        m.certificate_external: leveraged,
        m.Training: _trainings(rng, today),
        m.Meeting: _meetings(rng, today),
        m.Application: _applications(rng, members, today),
        m.CaseStudy: _case_studies(rng, members),
    }
    for target, batch in rows.items():
        session.execute(insert(target), batch)
    _surveys(session, rng, members, facilities)
    _advance_id_sequences(session, [t.__table__ if hasattr(t, "__table__") else t for t in rows])
    return {getattr(t, "__tablename__", getattr(t, "name", "")): len(b) for t, b in rows.items()}


def _advance_id_sequences(session: Session, tables: list[Any]) -> None:
    """Move PostgreSQL's id sequences past the ids given explicitly, so new rows get free ids."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite takes the next id from the table itself
    for table in tables:
        if "id" not in table.c:
            continue
        following = select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery()
        sequence = func.pg_get_serial_sequence(table.name, "id")
        session.execute(select(func.setval(sequence, following, false())))


def _members(rng: random.Random, today: date) -> list[dict[str, Any]]:
    members: list[dict[str, Any]] = []
    for membership_class, size in CLASS_SIZES.items():
        for _ in range(size):
            number = len(members) + 1
            country = rng.choice(MEMBER_COUNTRIES)
            joined = date(2015, 12, 1) + timedelta(
                days=rng.randrange((today - date(2015, 12, 1)).days)
            )
            left = None
            if rng.random() < 0.06:
                left = joined + timedelta(days=rng.randrange(200, 1500))
                left = left if left < today else None
            members.append(
                {
                    "id": number,
                    "code": f"M-{number:04d}",
                    "name": f"Demo {membership_class.split()[0]} member {number:03d} ({country})",
                    "membership_class": membership_class,
                    "country": country,
                    "joined_on": joined,
                    "left_on": left,
                    "status": "left" if left else "active",
                }
            )
    return members


def _facilities(rng: random.Random, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    facilities: list[dict[str, Any]] = []
    for member in members:
        if member["membership_class"] not in m.CERTIFIABLE_CLASSES:
            continue
        for _ in range(rng.randint(1, 4)):
            country = member["country"] if rng.random() < 0.6 else rng.choice(MEMBER_COUNTRIES)
            facilities.append(
                {
                    "id": len(facilities) + 1,
                    "code": f"F-{len(facilities) + 1:04d}",
                    "member_id": member["id"],
                    "name": f"Demo site {len(facilities) + 1:04d}",
                    "country": country,
                    "people": int(rng.lognormvariate(5.5, 1.2)) + 5,
                }
            )
    return facilities


def _firms(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    countries = sorted(c.alpha_2 for c in pycountry.countries)
    reach = rng.sample(countries, 95)
    firms, firm_countries = [], []
    for number in range(1, 26):
        accredited = date(2017, 6, 1) + timedelta(days=rng.randrange(2500))
        ends = accredited + timedelta(days=1800) if rng.random() < 0.15 else None
        firms.append(
            {
                "id": number,
                "name": f"Demo Audit Partners {number:02d}",
                "accredited_on": accredited,
                "accreditation_ends_on": ends,
            }
        )
        picked = {reach[(number * 4 + i) % 95] for i in range(4)} | set(rng.sample(reach, 8))
        firm_countries += [{"firm_id": number, "country": c} for c in sorted(picked)]
    return firms, firm_countries


def _certificates(
    rng: random.Random,
    members: list[dict[str, Any]],
    facilities: list[dict[str, Any]],
    firms: list[dict[str, Any]],
    today: date,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    sites: dict[int, list[int]] = {}
    for facility in facilities:
        sites.setdefault(facility["member_id"], []).append(facility["id"])
    holders = [mem for mem in members if mem["id"] in sites]
    certificates, covered, leveraged = [], [], []
    for number in range(1, 231):
        member = rng.choice(holders)
        standard = "PS" if rng.random() < 0.6 else "CoC"
        kind = "provisional" if rng.random() < 0.15 else "full"
        start = max(date(2018, 1, 1), member["joined_on"])
        if start >= today:
            start = date(2018, 1, 1)
        issued = start + timedelta(days=rng.randrange(max((today - start).days, 1)))
        expires = issued + timedelta(days=365 if kind == "provisional" else 3 * 365)
        withdrawn = issued + timedelta(days=200) if rng.random() < 0.03 else None
        certificates.append(
            {
                "id": number,
                "number": f"DEMO-{standard}-{number:04d}",
                "member_id": member["id"],
                "standard": standard,
                "kind": kind,
                "audit_type": rng.choice(("initial", "surveillance", "recertification")),
                "issued_on": issued,
                "expires_on": expires,
                "withdrawn_on": withdrawn,
                "auditing_firm_id": rng.choice(firms)["id"],
            }
        )
        for site in rng.sample(sites[member["id"]], rng.randint(1, len(sites[member["id"]]))):
            covered.append({"certificate_id": number, "facility_id": site})
        if standard == "PS" and rng.random() < 0.7:
            for ext in rng.sample(range(1, len(EXTERNAL) + 1), rng.randint(1, 3)):
                leveraged.append({"certificate_id": number, "external_certification_id": ext})
    return certificates, covered, leveraged


def _trainings(rng: random.Random, today: date) -> list[dict[str, Any]]:
    people = [("auditor", f"A{n:04d}") for n in range(420)] + [
        (rng.choice(("member", "member", "stakeholder")), f"P{n:05d}") for n in range(2600)
    ]
    courses = ("PS fundamentals", "CoC fundamentals", "Auditor training", "Material stewardship")
    rows: list[dict[str, Any]] = []
    for role, key in people:
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            rows.append(
                {
                    "person_key": key,
                    "role": role,
                    "course": rng.choice(courses),
                    "completed_on": date(2017, 3, 1)
                    + timedelta(days=rng.randrange((today - date(2017, 3, 1)).days)),
                }
            )
    return rows


def _meetings(rng: random.Random, today: date) -> list[dict[str, Any]]:
    rows = []
    for year in range(2016, today.year + 1):
        for body, per_year in (("board", 5), ("standards_committee", 4)):
            for month in sorted(rng.sample(range(1, 13), per_year)):
                held = date(year, month, rng.randint(1, 28))
                if held <= today:
                    rows.append({"body": body, "held_on": held})
    return rows


def _applications(
    rng: random.Random, members: list[dict[str, Any]], today: date
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for member in members:
        rows.append(_application(len(rows) + 1, member, "approved", member["id"]))
    for _ in range(30):
        country = rng.choice(MEMBER_COUNTRIES)
        applicant = {
            "name": f"Demo applicant {len(rows) + 1:03d} ({country})",
            "country": country,
            "membership_class": rng.choice(list(CLASS_SIZES)),
        }
        rows.append(
            _application(len(rows) + 1, applicant, rng.choice(("received", "rejected")), None)
        )
    return rows


def _application(
    number: int, org: dict[str, Any], status: str, member_id: int | None
) -> dict[str, Any]:
    return {
        "reference": f"DEMO-APP-{number:04d}",
        "organisation": org["name"],
        "membership_class": org["membership_class"],
        "country": org["country"],
        "contact_name": "Demo contact",
        "contact_email": f"contact{number:04d}@example.org",
        "details": {},
        "status": status,
        "member_id": member_id,
    }


def _case_studies(rng: random.Random, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    topics = (
        "Water stewardship at a refinery",
        "Indigenous peoples' consent process",
        "Scrap collection with local cooperatives",
        "Cutting anode-effect emissions",
        "Biodiversity offsets at a bauxite mine",
        "Traceable supply for a can maker",
    )
    rows = []
    for title in topics:
        member = rng.choice(members)
        rows.append(
            {
                "title": f"{title} (demo)",
                "member_id": member["id"],
                "country": member["country"],
                "summary": "A demonstration case study; it describes no real organisation.",
                "link": None,
            }
        )
    return rows


# The open year's form as an XLSForm import stores it: sections, skip logic (trees as
# collector.expressions parses them) and labels in English and French.
FRENCH = {
    "employees": "Personnes employées en fin d'année",
    "women_share": "Part des femmes dans l'effectif",
    "renewable_share": "Part d'électricité renouvelable",
    "ghg_scope1": "Émissions de gaz à effet de serre, scope 1",
    "human_rights_policy": "A une politique publique des droits humains",
    "policy_url": "Adresse web de la politique",
    "comments": "Autre chose à nous dire",
    "site_operating": "Le site a fonctionné pendant l'année",
    "site_energy_mwh": "Énergie consommée par le site",
}
SECTIONS = {"employees": "Workforce", "women_share": "Workforce", "renewable_share": "Environment"}
SECTIONS |= {"ghg_scope1": "Environment", "human_rights_policy": "Governance"}
SECTIONS |= {"policy_url": "Governance", "comments": "Governance"}
# The repeat sits in the Environment section: each facility's block shows as "Environment: <site>".
SECTIONS |= {"site_operating": "Environment", "site_energy_mwh": "Environment"}
# The open year's per-facility repeat (shared/outcomes/repeats.py): asked once per facility.
REPEAT = "each_site"
SITE_QUESTIONS: tuple[dict[str, Any], ...] = (
    {
        "key": "site_operating",
        "label": "The site operated during the year",
        "type": "boolean",
        "unit": "",
        "minimum": None,
        "maximum": None,
        "required": False,
        "aggregation": "none",
    },
    {
        "key": "site_energy_mwh",
        "label": "Energy the site used",
        "type": "decimal",
        "unit": "MWh",
        "minimum": 0,
        "maximum": 1e8,
        "required": False,
        "aggregation": "sum",  # a repeat aggregates as sum or none: a member's sites add up
    },
)
POLICY_URL = {
    "key": "policy_url",
    "label": "Web address of the policy",
    "type": "text",
    "unit": "",
    "minimum": None,
    "maximum": None,
    "required": True,
    "aggregation": "none",
}
RULES: dict[str, dict[str, Any]] = {
    "policy_url": {
        "relevant": ["=", ["ref", "human_rights_policy"], ["str", "1"]],
        "constraint": ["call", "starts-with", ["."], ["str", "https://"]],
        "constraint_message": "Give the address starting with https://",
        "required_message": "Give the address where the policy is published.",
    },
    "site_operating": {"repeat": REPEAT},
    # Skip logic inside the repeat: it reads the same facility's answer.
    "site_energy_mwh": {
        "repeat": REPEAT,
        "relevant": ["=", ["ref", "site_operating"], ["str", "1"]],
    },
}


def _form(year: int) -> list[dict[str, Any]]:
    """Return a year's questions; the open one's with sections, skip logic, a repeat, languages."""
    if year != SURVEY_YEARS[-1]:
        return [{**q, "logic": {}} for q in QUESTIONS]
    # The repeat after the Environment questions, so that section's blocks stay together.
    questions = [*QUESTIONS[:4], *SITE_QUESTIONS, QUESTIONS[4], POLICY_URL, QUESTIONS[5]]
    return [
        {
            **q,
            "logic": {
                "section": SECTIONS[q["key"]],
                "labels": {"English (en)": q["label"], "Français (fr)": FRENCH[q["key"]]},
                **RULES.get(q["key"], {}),
            },
        }
        for q in questions
    ]


def _surveys(
    session: Session,
    rng: random.Random,
    members: list[dict[str, Any]],
    facilities: list[dict[str, Any]],
) -> None:
    # The form lists a member's facilities by name (repeats.member_facilities): here id order.
    sites: dict[int, list[int]] = {}
    for facility in facilities:
        sites.setdefault(facility["member_id"], []).append(facility["id"])
    for year in SURVEY_YEARS:
        status = "open" if year == SURVEY_YEARS[-1] else "closed"
        definition = m.SurveyDefinition(
            year=year, version=1, title=f"Annual member survey {year}", status=status
        )
        session.add(definition)
        session.flush()
        session.execute(
            insert(m.SurveyQuestion),
            [
                {**q, "definition_id": definition.id, "position": i, "help_text": "", "choices": []}
                for i, q in enumerate(_form(year))
            ],
        )
        eligible = [
            mem
            for mem in members
            if mem["joined_on"].year <= year
            and (mem["left_on"] is None or mem["left_on"].year >= year)
        ]
        for member in rng.sample(eligible, int(len(eligible) * rng.uniform(0.35, 0.5))):
            answers: dict[str, Any] = {
                "employees": rng.randint(10, 20000),
                "women_share": round(rng.uniform(5, 45), 1),
                "renewable_share": round(rng.uniform(0, 100), 1),
                "ghg_scope1": round(rng.lognormvariate(9, 2), 1),
                "human_rights_policy": rng.random() < 0.7,
                "comments": "",
            }
            # (question key, facility, value): the repeat's answers carry their facility.
            typed: list[tuple[str, int | None, Any]] = [(k, None, v) for k, v in answers.items()]
            if year == SURVEY_YEARS[-1]:
                if answers["human_rights_policy"]:
                    answers["policy_url"] = f"https://member{member['id']}.example/human-rights"
                    typed.append(("policy_url", None, answers["policy_url"]))
                for site in sites.get(member["id"], []):
                    per_site: dict[str, Any] = {"site_operating": rng.random() < 0.9}
                    if per_site["site_operating"]:
                        per_site["site_energy_mwh"] = round(rng.lognormvariate(9, 1.5), 1)
                    answers |= {f"{k}@{site}": v for k, v in per_site.items()}
                    typed += [(k, site, v) for k, v in per_site.items()]
            state = "accepted" if status == "closed" or rng.random() < 0.7 else "submitted"
            response = m.SurveyResponse(
                member_id=member["id"],
                year=year,
                definition_id=definition.id,
                status=state,
                current_revision=1,
                accepted_revision=1 if state == "accepted" else None,
            )
            session.add(response)
            session.flush()
            revision = m.SurveyRevision(
                response_id=response.id, number=1, status=state, answers=answers
            )
            session.add(revision)
            session.flush()
            session.execute(
                insert(m.SurveyAnswer),
                [
                    {
                        "revision_id": revision.id,
                        "question_key": k,
                        "facility_id": site,
                        "value_number": float(v) if not isinstance(v, str) else None,
                        "value_text": v if isinstance(v, str) else None,
                    }
                    for k, site, v in typed
                    if v != ""
                ],
            )
