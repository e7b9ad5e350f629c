"""What the programme records: facilities, certificates, auditing firms, trainings, meetings."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.models.base import Base, created_at

STANDARDS = ("PS", "CoC")
CERTIFICATE_KINDS = ("full", "provisional")
TRAINING_ROLES = ("auditor", "member", "stakeholder")
MEETING_BODIES = ("board", "standards_committee")


class Facility(Base):
    """A site of a member, with the number of people working there."""

    __tablename__ = "facility"
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    # What certificate imports name the facility by; optional.
    code: Mapped[str | None] = mapped_column(String(40), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    people: Mapped[int] = mapped_column(default=0)
    removed_on: Mapped[date | None]
    created_at: Mapped[datetime] = created_at()


class AuditingFirm(Base):
    """An auditing firm and its accreditation period."""

    __tablename__ = "auditing_firm"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    accredited_on: Mapped[date]
    accreditation_ends_on: Mapped[date | None]
    created_at: Mapped[datetime] = created_at()


auditing_firm_country = Table(
    "auditing_firm_country",
    Base.metadata,
    Column("firm_id", ForeignKey("auditing_firm.id"), primary_key=True),
    Column("country", String(2), primary_key=True),
)


class ExternalCertification(Base):
    """A recognised external scheme (ISO 14001, ...) and when recognition is valid."""

    __tablename__ = "external_certification"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date]
    valid_until: Mapped[date | None]


class Certificate(Base):
    """A certificate issued against the Performance Standard or the Chain of Custody Standard."""

    __tablename__ = "certificate"
    __table_args__ = (Index("ix_certificate_standard_issued", "standard", "issued_on"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    standard: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(12))
    audit_type: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[date]
    expires_on: Mapped[date]
    withdrawn_on: Mapped[date | None]
    auditing_firm_id: Mapped[int | None] = mapped_column(ForeignKey("auditing_firm.id"))
    created_at: Mapped[datetime] = created_at()


certificate_facility = Table(
    "certificate_facility",
    Base.metadata,
    Column("certificate_id", ForeignKey("certificate.id"), primary_key=True),
    Column("facility_id", ForeignKey("facility.id"), primary_key=True),
)

certificate_external = Table(
    "certificate_external",
    Base.metadata,
    Column("certificate_id", ForeignKey("certificate.id"), primary_key=True),
    Column("external_certification_id", ForeignKey("external_certification.id"), primary_key=True),
)


class Training(Base):
    """A completed educationAl course by a pseudonymous person."""

    __tablename__ = "training"
    __table_args__ = (Index("ix_training_role_completed", "role", "completed_on", "person_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_key: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(12))
    course: Mapped[str] = mapped_column(String(200))
    completed_on: Mapped[date]
    created_at: Mapped[datetime] = created_at()


class Meeting(Base):
    """A governance meeting of the Board or the Standards Committee."""

    __tablename__ = "meeting"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(30))
    held_on: Mapped[date]
    created_at: Mapped[datetime] = created_at()


class CaseStudy(Base):
    """A qualitative story for the public view."""

    __tablename__ = "case_study"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    country: Mapped[str] = mapped_column(String(2))
    summary: Mapped[str] = mapped_column(String(4000))
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at()
