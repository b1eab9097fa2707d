"""The reports' summaries: per-day figures kept by the summariser (`services/report_summaries`)
from the orders, re-derived whole for each day an event touches. A report reads a day from
here only while the day is summarised (`report_days`) and no order placed on it has an event
past the summariser's cursor (`report_cursor`); every other day it computes live. So the
summaries make reports fast, never different (docs/reports.md, "How fresh, how exact")."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    Double,
    Index,
    Integer,
    Numeric,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from oms_api.models.base import Base, updated_at_column
from oms_api.models.events import XID8


class ReportCursor(Base):
    """How far through the outbox (`events`, in commit order: txid, position) the
    summariser has re-derived the days of the orders the events are about."""

    __tablename__ = "report_cursor"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    txid: Mapped[str] = mapped_column(XID8, nullable=False)
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = updated_at_column()


class ReportDay(Base):
    """A UTC day whose summary rows are written (as of the cursor)."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    summarised_at: Mapped[datetime] = updated_at_column()


class ReportMonth(Base):
    """A month whose `month` rows in `report_sku_sales` are the sum of its days' rows."""

    __tablename__ = "report_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    summarised_at: Mapped[datetime] = updated_at_column()


class ReportSales(Base):
    """Orders not cancelled placed on `day` of a channel in a currency: how many, their
    units (not cancelled) and revenue (their totals)."""

    __tablename__ = "report_sales"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(Text, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # numeric: a day's revenue can pass bigint (orders of up to 10^15; migration 0022)
    revenue: Mapped[int] = mapped_column(Numeric, nullable=False)


class ReportSkuSales(Base):
    """Per SKU on the orders not cancelled placed on a day (`span` 'day') or in a month
    (`span` 'month', `day` its first day): orders with a line of it (`holders`), orders
    holding units of it not cancelled, units, revenue. A SKU whose every unit was cancelled
    has a row with none (the returns report lists it as sold 0)."""

    __tablename__ = "report_sku_sales"
    __table_args__ = (CheckConstraint("span IN ('day', 'month')", name="span"),)

    span: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(Text, primary_key=True)
    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    holders: Mapped[int] = mapped_column(Integer, nullable=False)
    orders: Mapped[int] = mapped_column(Integer, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # numeric: a day's revenue can pass bigint (orders of up to 10^15; migration 0022)
    revenue: Mapped[int] = mapped_column(Numeric, nullable=False)


class ReportReturns(Base):
    """Units returned (returns neither rejected nor cancelled) per SKU and reason, of the
    orders not cancelled placed on `day`."""

    __tablename__ = "report_returns"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[str] = mapped_column(Text, primary_key=True)
    sku: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str] = mapped_column(Text, primary_key=True)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ReportLeadTimes(Base):
    """Fulfilment lead times of the orders not cancelled placed on a day (`span` 'day') or
    in a month (`span` 'month', `day` its first day; `channel_id` '' adding up every
    channel), at a shipping location (`location_id`; '' the whole order), bucketed by the
    whole hour (`hour`): how many orders were `placed` (hour 0), `shipped` or `delivered`
    that many hours after placement, and, on day rows, those lead times in hours, sorted
    (`hours`: what a percentile's rank falling in the bucket reads)."""

    __tablename__ = "report_lead_times"
    __table_args__ = (
        CheckConstraint("span IN ('day', 'month')", name="span"),
        CheckConstraint("kind IN ('placed', 'shipped', 'delivered')", name="kind"),
        # The fulfilment report's percentile: the lead times of one hour's bucket over the
        # period.
        Index(
            "ix_report_lead_times_bucket", "location_id", "kind", "hour", "day",
            postgresql_where=text("span = 'day'"),
        ),
    )  # fmt: skip

    span: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[str] = mapped_column(Text, primary_key=True)
    location_id: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, nullable=False)
    hours: Mapped[list[float] | None] = mapped_column(ARRAY(Double), nullable=True)
