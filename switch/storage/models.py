"""Tables (SQLAlchemy 2 declarative). One alembic revision per change (migrations/)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Double, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so that migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RegistrationRow(Base):
    """One binding of the location service (devices.location.Binding)."""

    __tablename__ = "registrations"

    aor: Mapped[str] = mapped_column(String(255), primary_key=True)
    binding_key: Mapped[str] = mapped_column(Text, primary_key=True)
    contact: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Double)
    q: Mapped[float] = mapped_column(Double)
    call_id: Mapped[str] = mapped_column(Text)
    cseq: Mapped[int] = mapped_column(BigInteger)
    instance_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    reg_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    transport: Mapped[str] = mapped_column(String(8))
    source_host: Mapped[str] = mapped_column(String(255))
    source_port: Mapped[int] = mapped_column(Integer)
    conn_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    user_agent: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[float] = mapped_column(Double)
    path: Mapped[str] = mapped_column(Text)  # Path header values joined by "\n"

    __table_args__ = (Index("ix_registrations_expires_at", "expires_at"),)


class CallRecordRow(Base):
    """One call record (rating.cdr.CallRecord)."""

    __tablename__ = "call_records"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[str] = mapped_column(Text)
    caller: Mapped[str] = mapped_column(String(255))
    callee: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dialed: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(32))
    site: Mapped[str | None] = mapped_column(String(16), nullable=True)
    customer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start: Mapped[float] = mapped_column(Double)
    answer: Mapped[float | None] = mapped_column(Double, nullable=True)
    end: Mapped[float | None] = mapped_column(Double, nullable=True)
    disposition: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    hangup_side: Mapped[str | None] = mapped_column(String(16), nullable=True)
    codec: Mapped[str | None] = mapped_column(String(32), nullable=True)
    emergency: Mapped[bool] = mapped_column(Boolean)
    billable: Mapped[bool] = mapped_column(Boolean)
    rtcp_loss: Mapped[float | None] = mapped_column(Double, nullable=True)
    rtcp_jitter_ms: Mapped[float | None] = mapped_column(Double, nullable=True)
    transferred_to: Mapped[str | None] = mapped_column(String(255), nullable=True)  # 0004
    queue_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)  # 0011
    queue_wait: Mapped[float | None] = mapped_column(Double, nullable=True)  # 0011
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # 0017, cluster

    __table_args__ = (
        Index("ix_call_records_start", "start"),
        Index("ix_call_records_open", "end"),
    )


class EmergencyLocationRow(Base):
    """A nomadic user's self-declared emergency location (emergency.locations)."""

    __tablename__ = "emergency_locations"

    aor: Mapped[str] = mapped_column(String(255), primary_key=True)
    street: Mapped[str] = mapped_column(Text)
    number: Mapped[str] = mapped_column(String(32))
    postal_code: Mapped[str] = mapped_column(String(16))
    city: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))
    extra: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Double)
