"""The calendar: validation, recurrence, demand summing, lead time, .ics, and the
daemon's decisions, as pure functions (no store); then the store and the CLI on a
SQLite file (fast, no daemon)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from burst.calendar.demand import demand_at, frozen_at, peak_demand, returned_at_end
from burst.calendar.ics import parse_ics, to_ics
from burst.calendar.leadtime import auto_lead_seconds, p95
from burst.calendar.model import (CalendarError, CalendarEvent, Occurrence, parse_demand, parse_duration,
                                  parse_local_time)
from burst.calendar.validate import validate
from burst.calendar.recurrence import next_occurrences, occurrences
from burst.calendar.schedule import decide

T0 = datetime(2026, 3, 6, 20, 0)  # a Friday, wall clock
SERVICES = ["web", "api"]


def event(**kw) -> CalendarEvent:
    base = dict(name="gala", start=T0, timezone="Asia/Shanghai", demand={"web": 10}, duration=timedelta(hours=2))
    return CalendarEvent(**{**base, **kw})


# -- validation -----------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (dict(end=T0 - timedelta(hours=1), duration=None), "is not after start"),
    (dict(end=T0, duration=None), "is not after start"),
    (dict(end=T0 + timedelta(hours=1)), "exactly one of end or duration (both given)"),
    (dict(duration=None), "exactly one of end or duration (neither given)"),
    (dict(rrule="FREQ=DAILY;UNTIL=20250101T000000Z"), "yields no occurrence"),
    (dict(rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"), "yields no occurrence"),
    (dict(rrule="FREQ=SOMETIMES"), "RRULE 'FREQ=SOMETIMES' is invalid"),
    (dict(cron="0 0 30 2 *"), "yields no occurrence"),
    (dict(cron="every friday"), "not a valid 5-field expression"),
    (dict(rrule="FREQ=DAILY", cron="0 20 * * 5"), "at most one recurrence"),
    (dict(timezone="Mars/Olympus_Mons"), "unknown timezone 'Mars/Olympus_Mons'"),
    (dict(demand={"db": 3}), "unknown service 'db'"),
    (dict(demand={"web": 0}), "must be a positive whole number"),
    (dict(demand={}), "demand is required"),
    (dict(freeze=True), "a freeze window asks for no capacity"),
    (dict(name="Spring Gala"), "event name 'Spring Gala'"),
    (dict(lead_seconds=-5), "lead time must not be negative"),
])
def test_each_invalid_event_is_one_clear_error(change, message):
    with pytest.raises(CalendarError) as err:
        validate(event(**change), services=SERVICES)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_a_valid_event_gets_its_title_and_a_uid():
    e = validate(event(), services=SERVICES)
    assert e.title == "gala" and e.uid.endswith("@burst")


def test_parsing_of_times_durations_and_demand():
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("PT2H") == timedelta(hours=2)
    assert parse_demand(["web=10,api=4"]) == {"web": 10, "api": 4}
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_local_time("+2m", "Asia/Shanghai", now=now) == datetime(2026, 1, 1, 20, 2)
    assert parse_local_time("2026-01-01T12:00+00:00", "Asia/Shanghai") == datetime(2026, 1, 1, 20, 0)
    for bad in (lambda: parse_duration("soon"), lambda: parse_demand(["web"]), lambda: parse_demand(["web=x"]),
                lambda: parse_local_time("tomorrow", "UTC")):
        with pytest.raises(CalendarError):
            bad()


# -- recurrence -----------------------------------------------------------------

def test_weekly_rrule_keeps_wall_clock_time_across_dst():
    e = validate(event(timezone="Europe/Berlin", rrule="FREQ=WEEKLY;COUNT=5"), services=SERVICES)
    occs = list(occurrences(e, limit=10))
    assert len(occs) == 5
    # 20:00 Berlin is 19:00Z in winter and 18:00Z after the 29 March 2026 change
    assert [o.start.hour for o in occs] == [19, 19, 19, 19, 18]
    assert all(o.end - o.start == timedelta(hours=2) for o in occs)
    assert occs[0].key == "gala@2026-03-06T19:00:00Z"


def test_cron_occurrences_in_the_event_timezone_from_its_start():
    e = validate(event(cron="0 9 * * 1-5", duration=timedelta(minutes=30)), services=SERVICES)
    occs = list(occurrences(e, limit=3))
    # first weekday 09:00 Shanghai after Friday 20:00 is Monday 09:00 = 01:00Z
    assert [o.start for o in occs] == [datetime(2026, 3, d, 1, 0, tzinfo=UTC) for d in (9, 10, 11)]


def test_next_occurrences_include_the_running_one():
    e = validate(event(timezone="UTC", rrule="FREQ=DAILY"), services=SERVICES)
    now = datetime(2026, 3, 8, 21, 0, tzinfo=UTC)  # inside the 8 March occurrence
    nxt = next_occurrences(e, now, 2)
    assert [o.start.day for o in nxt] == [8, 9]


# -- demand -----------------------------------------------------------------------

def occ(name, start_h, end_h, demand, freeze=False):
    day = datetime(2026, 1, 1, tzinfo=UTC)
    return Occurrence(name, day + timedelta(hours=start_h), day + timedelta(hours=end_h), demand, freeze)


def test_overlapping_events_add_and_an_end_returns_only_its_own_share():
    gala = occ("gala", 18, 23, {"web": 10, "api": 2})
    red = occ("red-envelope", 20, 21, {"web": 5})
    occs = [gala, red]
    at = datetime(2026, 1, 1, 20, 30, tzinfo=UTC)
    assert demand_at(occs, at) == {"web": 15, "api": 2}
    assert peak_demand(occs) == {"web": 15, "api": 2}
    # the red envelope ends: only its 5 web go back, the gala keeps its 10 + 2
    assert returned_at_end(occs, red) == {"web": 5}
    assert demand_at(occs, red.end) == {"web": 10, "api": 2}
    assert returned_at_end(occs, gala) == {"web": 10, "api": 2}


def test_a_freeze_window_is_found_and_asks_for_nothing():
    frz = occ("freeze", 22, 26, {}, freeze=True)
    gala = occ("gala", 18, 23, {"web": 10})
    assert frozen_at([gala, frz], datetime(2026, 1, 1, 23, 0, tzinfo=UTC)) is frz
    assert frozen_at([gala, frz], datetime(2026, 1, 1, 21, 0, tzinfo=UTC)) is None
    assert demand_at([gala, frz], datetime(2026, 1, 1, 22, 30, tzinfo=UTC)) == {"web": 10}


# -- lead time --------------------------------------------------------------------

def test_lead_time_is_measured_p95_plus_margin_with_configured_fallback():
    assert p95([float(x) for x in range(1, 101)]) == 95.0
    configured = {"pool": 30.0, "aliyun": 120.0, "aws": 150.0}
    history = {"pool": [20.0] * 19 + [40.0], "aliyun": [60.0, 70.0], "aws": []}
    # pool measured (p95 of 20 samples = the 19th = 20 s); aliyun has too few samples: configured 120
    assert auto_lead_seconds(["pool"], configured, history.__getitem__, 60) == 80.0
    assert auto_lead_seconds(["pool", "aliyun"], configured, history.__getitem__, 60) == 180.0
    history["aliyun"] = [50.0] * 10
    assert auto_lead_seconds(["pool", "aliyun"], configured, history.__getitem__, 60) == 110.0


# -- .ics ---------------------------------------------------------------------------

TEAM_ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Team//Calendar//EN\r
BEGIN:VEVENT\r
UID:weekly-gala-2026@team.example\r
DTSTAMP:20260101T000000Z\r
SUMMARY:Friday Night Gala\r
DTSTART;TZID=Asia/Shanghai:20260306T200000\r
DTEND;TZID=Asia/Shanghai:20260306T230000\r
RRULE:FREQ=WEEKLY;BYDAY=FR;COUNT=8\r
DESCRIPTION:The weekly live show.\\nburst: web=40 api=8\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:new-year-freeze@team.example\r
DTSTAMP:20260101T000000Z\r
SUMMARY:Change freeze\r
CATEGORIES:FREEZE\r
DTSTART:20261230T000000Z\r
DURATION:P5D\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_team_ics_imports_and_exports_back_to_the_same_events():
    events = parse_ics(TEAM_ICS, services=SERVICES)
    gala, freeze = events
    assert (gala.name, gala.title, gala.timezone) == ("friday-night-gala", "Friday Night Gala", "Asia/Shanghai")
    assert gala.demand == {"web": 40, "api": 8}
    assert set(gala.rrule.split(";")) == {"FREQ=WEEKLY", "BYDAY=FR", "COUNT=8"} and gala.end == datetime(2026, 3, 6, 23, 0)
    assert freeze.freeze and freeze.duration == timedelta(days=5) and freeze.timezone == "UTC"
    exported = to_ics(events)
    assert parse_ics(exported, services=SERVICES) == events
    assert to_ics(parse_ics(exported, services=SERVICES)) == exported


@pytest.mark.parametrize("bad, message", [
    (b"not a calendar", "not an iCalendar file"),
    (TEAM_ICS.replace(b"burst: web=40 api=8", b""), "demand is required"),
    (TEAM_ICS.replace(b"COUNT=8", b"UNTIL=20200101T000000Z"), "yields no occurrence"),
    (TEAM_ICS.replace(b"DTEND;TZID=Asia/Shanghai:20260306T230000", b"DTEND;TZID=Asia/Shanghai:20260306T190000"),
     "is not after start"),
    (TEAM_ICS.replace(b"RRULE:", b"EXDATE:20260313T120000Z\r\nRRULE:"), "EXDATE is not supported"),
])
def test_bad_ics_is_refused_whole(bad, message):
    with pytest.raises(CalendarError, match=message):
        parse_ics(bad, services=SERVICES)


# -- the daemon's decisions --------------------------------------------------------

@dataclass
class Action:
    event: str
    occurrence: str
    action: str
    status: str
    ends_at: datetime | None = None


START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def one_off(**kw):
    base = dict(name="flash", start=START.replace(tzinfo=None), timezone="UTC", demand={"web": 6},
                duration=timedelta(minutes=10), lead_seconds=60.0, created_at=START - timedelta(days=1))
    return validate(CalendarEvent(**{**base, **kw}))


def decisions(events, actions, now):
    return [(d.action, d.outcome) for d in decide(events, actions, now, lead_seconds=lambda e: e.lead_seconds,
                                                  late_after=timedelta(seconds=30), lookback=timedelta(days=7))]


def test_up_is_due_at_start_minus_lead_and_late_after_the_grace():
    e = one_off()
    assert decisions([e], [], START - timedelta(seconds=61)) == []
    assert decisions([e], [], START - timedelta(seconds=60)) == [("up", "on_time")]
    assert decisions([e], [], START - timedelta(seconds=20)) == [("up", "late")]
    assert decisions([e], [], START + timedelta(minutes=9)) == [("up", "late")]
    assert decisions([e], [], START + timedelta(minutes=10)) == [("missed", "missed")]


def test_a_recorded_action_is_not_decided_again_and_down_comes_at_the_end():
    e = one_off()
    key = "flash@2026-01-01T12:00:00Z"
    up = Action("flash", key, "up", "done", START + timedelta(minutes=10))
    assert decisions([e], [up], START) == []
    assert decisions([e], [up], START + timedelta(minutes=10)) == [("down", "on_time")]
    # the event was removed meanwhile: its occurrence still goes down at its end
    assert decisions([], [up], START + timedelta(minutes=11)) == [("down", "late")]
    down = Action("flash", key, "down", "done")
    assert decisions([e], [up, down], START + timedelta(minutes=11)) == []
    missed = Action("flash", key, "up", "missed", START + timedelta(minutes=10))
    assert decisions([e], [missed], START + timedelta(minutes=11)) == []


def test_a_started_action_of_a_dead_daemon_is_resumed():
    e = one_off()
    key = "flash@2026-01-01T12:00:00Z"
    up = Action("flash", key, "up", "started", START + timedelta(minutes=10))
    assert [(d.action, d.resume) for d in decide([e], [up], START, lead_seconds=lambda e: 60,
                                                  late_after=timedelta(seconds=30), lookback=timedelta(days=1))] \
        == [("up", True)]
    down = Action("flash", key, "down", "started")
    assert decisions([e], [replace(up, status="done"), down], START + timedelta(minutes=11)) == [("down", "resumed")]


def test_no_missed_record_for_an_occurrence_that_ended_before_the_event_was_entered():
    e = one_off(created_at=START + timedelta(hours=1))
    assert decisions([e], [], START + timedelta(hours=2)) == []


def test_scale_in_waits_for_a_freeze_window():
    e = one_off()
    frz = validate(CalendarEvent(name="freeze", start=(START + timedelta(minutes=5)).replace(tzinfo=None),
                                 timezone="UTC", duration=timedelta(minutes=30), freeze=True))
    key = "flash@2026-01-01T12:00:00Z"
    up = Action("flash", key, "up", "done", START + timedelta(minutes=10))
    at_end = START + timedelta(minutes=10)
    assert decisions([e, frz], [up], at_end) == [("frozen", "frozen")]
    frozen = Action("flash", key, "frozen", "done")
    assert decisions([e, frz], [up, frozen], at_end + timedelta(minutes=5)) == []
    assert decisions([e, frz], [up, frozen], START + timedelta(minutes=35)) == [("down", "after_freeze")]


def test_overlapping_occurrences_get_their_own_actions():
    daily = one_off(rrule="FREQ=HOURLY;COUNT=3", duration=timedelta(minutes=90))
    now = START + timedelta(minutes=59)  # the 12:00 one runs; the 13:00 one is due (lead 60 s)
    got = decide([daily], [], now, lead_seconds=lambda e: 60, late_after=timedelta(seconds=30),
                 lookback=timedelta(days=1))
    assert [(d.occurrence_key, d.outcome) for d in got] == [("flash@2026-01-01T12:00:00Z", "late"),
                                                            ("flash@2026-01-01T13:00:00Z", "on_time")]


# -- the store and the CLI (a SQLite file; no daemon) ------------------------------

CONFIG = """\
[cluster]
name = "caltest"
store = "sqlite:///state/burst.db"
state_dir = "state"

[[services]]
name = "web"
cpu = 1.0
memory_gib = 1.0

[[services]]
name = "api"
cpu = 1.0
memory_gib = 1.0

[[tiers]]
name = "cloud"
provider = "fake"
ready_seconds = 5
[[tiers.instance_types]]
name = "fake.large"
cpu = 4
memory_gib = 8
price_per_hour = 0.2
zones = ["zone-a"]
"""


@pytest.fixture
def cli(tmp_path: Path):
    from burst.cli import app

    (tmp_path / "burst.toml").write_text(CONFIG)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [*args, "-c", str(tmp_path / "burst.toml")], catch_exceptions=True)

    return run


def test_cli_imports_lists_next_occurrences_and_exports_back_equal(cli, tmp_path):
    weekly = TEAM_ICS.replace(b";COUNT=8", b"")  # every Friday from 6 March 2026 on: always some ahead
    (tmp_path / "team.ics").write_bytes(weekly)
    assert cli("calendar", "import", str(tmp_path / "team.ics")).exit_code == 0
    before = datetime.now(UTC)
    listed = json.loads(cli("calendar", "list", "--json", "--count", "3").stdout)
    gala = next(e for e in listed if e["name"] == "friday-night-gala")
    assert gala["demand"] == {"web": 40, "api": 8}
    starts = [datetime.fromisoformat(o["start"]) for o in gala["next"]]
    assert len(starts) == 3
    # Fridays 20:00 Shanghai = 12:00Z, a week apart, the first still running or ahead
    assert all(s.weekday() == 4 and s.hour == 12 for s in starts)
    assert [b - a for a, b in zip(starts, starts[1:])] == [timedelta(days=7)] * 2
    assert starts[0] + timedelta(hours=3) > before and starts[0] - before < timedelta(days=7)
    assert gala["next"][0]["key"].startswith("friday-night-gala@")
    assert cli("calendar", "export", str(tmp_path / "out.ics")).exit_code == 0
    by_name = lambda events: sorted(events, key=lambda e: e.name)  # noqa: E731
    assert by_name(parse_ics((tmp_path / "out.ics").read_bytes())) == by_name(parse_ics(weekly))
    table = cli("calendar", "list")
    assert table.exit_code == 0 and "RRULE" in table.stdout


def test_cli_refuses_invalid_events_and_stores_nothing(cli, tmp_path):
    cases = [
        (["--start", "2030-01-01T10:00", "--end", "2030-01-01T09:00"], "is not after start"),
        (["--start", "2030-01-01T10:00", "--end", "2030-01-01T11:00", "--duration", "1h"], "exactly one of end"),
        (["--start", "2030-01-01T10:00", "--duration", "1h", "--rrule", "FREQ=DAILY;UNTIL=20200101T000000Z"],
         "yields no occurrence"),
        (["--start", "2030-01-01T10:00", "--duration", "1h", "--tz", "Nowhere/Special"], "unknown timezone"),
    ]
    from burst.cli import main  # noqa: F401  (the same error path as `burst`: BurstError -> one line)

    for args, message in cases:
        result = cli("calendar", "add", "bad", "-r", "web=2", *args)
        assert result.exit_code != 0
        assert message in str(result.exception)
    # a file with one good and one bad event stores neither
    bad = TEAM_ICS.replace(b"DURATION:P5D", b"DURATION:P5D\r\nX-BURST-DEMAND:web=1")
    (tmp_path / "bad.ics").write_bytes(bad)
    result = cli("calendar", "import", str(tmp_path / "bad.ics"))
    assert "a freeze window asks for no capacity" in str(result.exception)
    assert json.loads(cli("calendar", "list", "--json").stdout) == []


def test_cli_add_show_remove(cli):
    assert cli("calendar", "add", "launch", "--start", "2030-05-01T09:00", "--duration", "2h", "--tz",
               "Asia/Shanghai", "-r", "web=3", "--lead", "10m").exit_code == 0
    shown = json.loads(cli("calendar", "show", "launch", "--json").stdout)
    assert shown["lead_seconds"] == 600 and shown["next"][0]["start"] == "2030-05-01T01:00:00+00:00"
    again = cli("calendar", "add", "launch", "--start", "2030-05-01T09:00", "--duration", "2h", "-r", "web=3")
    assert "already exists" in str(again.exception)
    assert cli("calendar", "remove", "launch").exit_code == 0
    assert "no calendar event 'launch'" in str(cli("calendar", "show", "launch").exception)
