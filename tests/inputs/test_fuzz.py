"""Property-based tests of the four input classes: configs, arguments, inventories,
calendars. Each generates valid and broken inputs and checks them against one
invariant (bad_input.check): a valid input is accepted; a broken one exits non-zero
with one line naming the file, line, key or flag, prints no traceback, and leaves the
store as it was, table by table. Run long: `HYPOTHESIS_PROFILE=long pytest tests/inputs`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
from bad_input import CONFIG, check
from hypothesis import assume, given
from hypothesis import strategies as st

from burst.calendar.model import NAME as CALENDAR_NAME
from burst.durations import is_duration
from burst.names import HOST

ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "America/Los_Angeles", "America/Sao_Paulo", "Europe/London",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe", "Asia/Kathmandu"]
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
anything = st.text(max_size=40)


# -- configs ---------------------------------------------------------------------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "inf" if v == math.inf else "-inf" if v == -math.inf else "nan" if v != v else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(data: dict) -> str:
    """Tables and arrays of tables, one level of sub-tables: enough for burst.toml."""
    out = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict | list)]

    def table(header: str, body: dict) -> None:
        out.append(header)
        subs = []
        for k, v in body.items():
            if isinstance(v, dict):
                subs.append((k, v))
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                subs.append((k, v))
            else:
                out.append(f"{k} = {toml_value(v)}")
        name = header.strip("[]")
        for k, v in subs:
            if isinstance(v, dict):
                table(f"[{name}.{k}]", v)
            else:
                for item in v:
                    table(f"[[{name}.{k}]]", item)

    for key, value in data.items():
        if isinstance(value, dict):
            table(f"[{key}]", value)
        elif isinstance(value, list):
            for item in value:
                table(f"[[{key}]]", item)
    return "\n".join(out) + "\n"


config_names = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
sizes = st.floats(0.25, 64, allow_nan=False) | st.integers(1, 64)


@st.composite
def valid_configs(draw) -> dict:
    services = draw(st.lists(config_names, min_size=1, max_size=3, unique=True))
    tiers = draw(st.lists(config_names, min_size=1, max_size=2, unique=True))
    data: dict = {
        "cluster": {"name": draw(config_names), "sla_seconds": draw(st.integers(1, 3600) | st.floats(1, 3600)),
                    "store": "sqlite:///state/burst.db", "state_dir": "state"},
        "services": [{"name": s, "cpu": draw(sizes), "memory_gib": draw(sizes),
                      **({"max_per_host": draw(st.integers(1, 10))} if draw(st.booleans()) else {})}
                     for s in services],
        "tiers": [{"name": t, "provider": "fake", "ready_seconds": draw(st.integers(1, 600)),
                   "concurrency": draw(st.integers(1, 100)),
                   **({"max_hosts": draw(st.integers(1, 1000))} if draw(st.booleans()) else {}),
                   "options": draw(st.fixed_dictionaries({}, optional={
                       "boot_seconds": st.floats(0, 5), "launch_seconds": st.floats(0, 1)})),
                   "instance_types": [{"name": "fake.large", "cpu": draw(sizes), "memory_gib": draw(sizes),
                                       "price_per_hour": draw(st.floats(0, 10)), "zones": ["zone-a"]}]}
                  for t in tiers],
        "initialise": {"kind": "recording", "options": {"seconds": draw(st.floats(0, 2))}},
    }
    if draw(st.booleans()):
        data["limits"] = {"hosts_per_burst": draw(st.integers(1, 100_000)),
                          "hosts_per_tier": draw(st.integers(1, 100_000)),
                          "tiers": {tiers[0]: draw(st.integers(1, 100_000))}}
    if draw(st.booleans()):
        data["daemon"] = {"tick_seconds": draw(st.floats(0.1, 60)), "metrics_port": draw(st.integers(0, 65535))}
    return data


def _set(data: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        data = data[key]
    if value is _DELETE:
        del data[path[-1]]
    else:
        data[path[-1]] = value


_DELETE = object()
#: (key path, bad value, what the error line names)
CONFIG_BREAKS = [
    *((("cluster", "sla_seconds"), v, "cluster.sla_seconds") for v in ("300", -1, 0, math.inf, math.nan, True, 10**9)),
    *((("cluster", "name"), v, "cluster.name") for v in ("Demo", "", "a b", "[/x]", "x" * 50, 3)),
    (("cluster", "slas"), 1, "cluster.slas: unknown key"),
    (("cluster", "store"), "sqlite:///no/such/dir/burst.db", "cluster.store"),
    (("cluster", "store"), "mysql://db/x", "cluster.store"),
    (("cluster", "state_dir"), "burst.toml/x", "cluster.state_dir"),
    (("cluster", "name"), _DELETE, "cluster.name: required key is missing"),
    (("services",), [], "services"),
    *((("services", 0, "cpu"), v, "services[0].cpu") for v in ("1", 0, -2, math.inf, 1e9, True)),
    (("services", 0, "cpus"), 1, "services[0].cpus: unknown key"),
    *((("tiers", 0, "max_hosts"), v, "tiers[0].max_hosts") for v in (0, -1, 1.5, "3")),
    *((("tiers", 0, "concurrency"), v, "tiers[0].concurrency") for v in (0, 10**6)),
    (("tiers", 0, "options", "boot_secs"), 1, "tiers[0].options.boot_secs: unknown option"),
    (("tiers", 0, "options", "boot_seconds"), math.inf, "tiers[0].options.boot_seconds"),
    (("tiers", 0, "instance_types", 0, "zones"), [], "tiers[0].instance_types[0].zones"),
    (("tiers", 0, "instance_types", 0, "cpu"), math.nan, "tiers[0].instance_types[0].cpu"),
    (("initialise", "options", "secs"), 1, "initialise.options.secs: unknown option"),
    (("initialise", "kind"), "puppet", "initialise.kind"),
    (("daemon",), {"metrics_port": 70000}, "daemon.metrics_port"),
    (("daemon",), {"tick": 1}, "daemon.tick: unknown key"),
    (("limits",), {"hosts_per_burst": 0}, "limits.hosts_per_burst"),
    (("limits",), {"tiers": {"nope": 3}}, "limits.tiers.nope"),
]


@given(data=valid_configs(), broken=st.none() | st.sampled_from(CONFIG_BREAKS) | st.sampled_from(["bytes", "toml"]))
def test_configs(world, data, broken):
    with world.fresh() as w:
        names = "burst.toml"
        if isinstance(broken, tuple):
            path, value, names = broken
            _set(data, path, value)
        text = to_toml(data).encode()
        if broken == "bytes":
            text = text.replace(b"\n", b"\n# \xff\xfe\n", 1)
        elif broken == "toml":
            text += b"[[tiers\n"
        w.config.write_bytes(text)
        result = check(["status", "--json", "-c", str(w.config)], w.db, valid=broken is None, names=names,
                       kind="configs")
        if broken is not None:
            assert "burst.toml" in result.stderr


# -- arguments -------------------------------------------------------------------------

@st.composite
def durations(draw) -> str:
    h, m, s = draw(st.integers(0, 9)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    assume(h or m)
    form = draw(st.sampled_from(["compact", "iso", "minutes", "plus", "seconds"]))
    if form == "compact":
        return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)
    if form == "iso":
        return "PT" + "".join(f"{v}{u}" for v, u in ((h, "H"), (m, "M"), (s, "S")) if v)
    if form == "minutes":
        return f"{h * 60 + m}m"
    if form == "plus":
        return f"+{h * 60 + m}min"
    return str(h * 3600 + m * 60 + s)


@st.composite
def calendar_args(draw) -> dict:
    start = draw(st.sampled_from(["plus", "iso"]))
    return {
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True).filter(lambda n: n != "seed")),
        "--start": f"+{draw(st.integers(1, 10_000))}m" if start == "plus"
        else draw(st.datetimes(datetime(2027, 1, 1), datetime(2030, 12, 31))).strftime("%Y-%m-%dT%H:%M"),
        "--duration": draw(durations()),
        "--tz": draw(st.sampled_from(ZONES)),
        "-r": f"{draw(st.sampled_from(['web', 'api']))}={draw(st.integers(1, 1000))}",
        **({"--lead": f"{draw(st.integers(0, 600))}m"} if draw(st.booleans()) else {}),
        **({"--rrule": draw(st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=FR", "FREQ=DAILY;COUNT=5",
                                              "FREQ=HOURLY;INTERVAL=10", "freq=monthly;bymonthday=-1"]))}
           if draw(st.booleans()) else {}),
        **({"--title": draw(printable.filter(lambda t: "\\" not in t))} if draw(st.booleans()) else {}),
    }


ARG_BREAKS = {
    "name": [(v, "event name") for v in ("", " ", "Spring Gala", "a\nb", "x" * 64, "../x", "a;rm -rf /", "[/x]")],
    "--duration": [(v, "--duration") for v in ("0", "0s", "-5m", "1y", "PT", "5m5m", "inf", "nan", "1e9h",
                                              "99999999999999d", "367d", "5 parsecs")],
    "--tz": [(v, "unknown timezone") for v in ("Mars/Base", "EST5EDT,M3.2.0,M11.1.0", "../../etc/passwd", "",
                                               "utc ", "Local")],
    "-r": [("web=0", "replicas of 'web'"), ("db=3", "unknown service 'db'"), ("web=-1", "web=-1"),
           ("web=x", "web=x"), ("web", "'web'"), ("web=9999999999", "9 digits")],
    "--start": [(v, "time") for v in ("2027-13-01T00:00", "yesterday", "+0m", "9999-12-31T23:00", "+", "+inf")],
    "--rrule": [(v, "RRULE") for v in ("FREQ=SECONDLY", "FREQ=DAILY;INTERVAL=-1", ";;;==", "FREQ=DAILY;COUNT=0",
                                       "FREQ=DAILY;BYHOUR=25", "FREQ=WEEKLY;BYDAY=XX", "FREQ=DAILY;FREQ=DAILY",
                                       "INTERVAL=2", "FREQ=MINUTELY;INTERVAL=5")],
    "--lead": [(v, "--lead") for v in ("-1m", "8d", "abc", "nan")],
    "--title": [("a\tb", "title"), ("x" * 201, "title")],
}


@given(args=calendar_args(), broken=st.none() | st.sampled_from(sorted(ARG_BREAKS)).flatmap(
    lambda field: st.tuples(st.just(field), st.sampled_from(ARG_BREAKS[field]) | (
        anything.filter(lambda t: not CALENDAR_NAME.fullmatch(t)).map(lambda t: (t, "event name"))
        if field == "name" else anything.filter(lambda t: t.strip() and not is_duration(t)).map(
            lambda t: (t, "--duration")) if field == "--duration" else st.sampled_from(ARG_BREAKS[field])))))
def test_arguments(world, args, broken):
    names = ""
    if broken is not None:
        field, (value, names) = broken
        args[field] = value
    with world.fresh() as w:
        name = args.pop("name")
        argv = ["calendar", "add"] + [x for k, v in args.items() for x in (k, v)] + ["-c", str(w.config), "--", name]
        check(argv, w.db, valid=broken is None, names=names, kind="arguments")


# -- inventories -----------------------------------------------------------------------

@st.composite
def inventories(draw) -> list[dict]:
    n = draw(st.integers(1, 15))
    suffixes = draw(st.lists(st.from_regex(r"[a-z0-9]{0,5}", fullmatch=True), min_size=n, max_size=n))
    hosts = []
    for i in range(n):
        memory = draw(st.sampled_from(["memory_gib", "memory", "ansible_memtotal_mb"]))
        gib = draw(st.integers(1, 512))
        hosts.append({"name": f"h{i}-{suffixes[i]}", "group": draw(st.sampled_from(["web", "db", "cache"])),
                      "vars": {"cpu": draw(st.integers(1, 128) | st.floats(0.5, 128)),
                               memory: gib if memory == "memory_gib" else f"{gib}G" if memory == "memory"
                               else gib * 1024,
                               "ansible_host": f"10.1.{i // 250}.{i % 250 + 1}",
                               **({"ansible_port": draw(st.integers(1, 65535))} if draw(st.booleans()) else {})}})
    return hosts


def render_inventory(hosts: list[dict], form: str, children: dict[str, list[str]] | None = None) -> str:
    groups: dict[str, list[dict]] = {}
    for h in hosts:
        groups.setdefault(h["group"], []).append(h)
    if form == "ini":
        lines = []
        for g, members in groups.items():
            lines.append(f"[{g}]")
            lines += [h["name"] + "".join(f" {k}={v}" for k, v in h["vars"].items()) for h in members]
        for parent, kids in (children or {}).items():
            lines += [f"[{parent}:children]", *kids]
        return "\n".join(lines) + "\n"
    tree = {"all": {"children": {g: {"hosts": {h["name"]: h["vars"] for h in members}}
                                 for g, members in groups.items()}}}
    for parent, kids in (children or {}).items():
        tree["all"]["children"][parent] = {"children": {k: None for k in kids}}
    if form == "json":
        return json.dumps(tree, indent=1)
    import yaml

    return yaml.safe_dump(tree, sort_keys=False)


INVENTORY_BREAKS = [
    *(("cpu", v) for v in (math.inf, math.nan, 1e9, -1, 0, True, "eight")),
    *(("ansible_port", v) for v in (0, 70000, -1, "x", True)),
    *(("ansible_host", v) for v in ("a;b", "../x", "")),
    *(("name", v) for v in ("../../etc/passwd", "a/b", "x..y")),
    ("duplicate", None), ("undefined child", None), ("syntax", None), ("bytes", None),
]


@given(hosts=inventories(), form=st.sampled_from(["ini", "yml", "json"]),
       unit=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True),
       broken=st.none() | st.sampled_from(INVENTORY_BREAKS), which=st.integers(0, 100))
def test_inventories(world, hosts, form, unit, broken, which):
    assume(unit != "seedunit")
    children = None
    victim = hosts[which % len(hosts)]
    if broken is not None:
        what, value = broken
        if what == "name":
            victim["name"] = value
        elif what == "duplicate":
            hosts.append({**victim, "group": "other", "vars": {**victim["vars"], "cpu": victim["vars"]["cpu"] + 1}})
        elif what == "undefined child":
            children = {"prod": ["ghosts"]}
        elif what not in ("syntax", "bytes"):
            if form == "ini" and isinstance(value, float) and math.isnan(value):
                value = "nan"
            victim["vars"][what] = value
    text = render_inventory(hosts, form, children).encode()
    if broken == ("syntax", None):
        text = {"ini": b"[web\n", "yml": b"all: [\n", "json": text.rstrip()[:-1] + b",}"}[form] + text
    elif broken == ("bytes", None):
        text = b"\xff\xfe\x00" + text
    if form == "ini" and broken is not None and broken[0] == "ansible_host" and broken[1] == "":
        assume(False)  # `ansible_host=` in INI is the empty string too, but shlex reads it as no value
    with world.fresh() as w:
        path = w.dir / f"inventory.{form}"
        path.write_bytes(text)
        check(["pool", "import", unit, str(path), "-c", str(w.config)], w.db, valid=broken is None,
              names=f"inventory.{form}", kind="inventories")


# -- calendars -------------------------------------------------------------------------

@st.composite
def calendars(draw) -> list[icalendar.Event]:
    events = []
    for i in range(draw(st.integers(1, 3))):
        v = icalendar.Event()
        v.add("uid", f"{i}@fuzz")
        v.add("summary", draw(printable))
        v.add("x-burst-name", f"ev{i}-{draw(st.from_regex(r'[a-z0-9]{0,8}', fullmatch=True))}")
        start = draw(st.datetimes(datetime(2027, 1, 1), datetime(2029, 12, 31))).replace(microsecond=0)
        v.add("dtstart", start.replace(tzinfo=ZoneInfo(draw(st.sampled_from(ZONES)))))
        length = timedelta(minutes=draw(st.integers(1, 600)))
        if draw(st.booleans()):
            v.add("duration", length)
        else:
            v.add("dtend", v["dtstart"].dt + length)
        rule = draw(st.sampled_from([None, "FREQ=DAILY", "FREQ=WEEKLY;BYDAY=FR;COUNT=8", "FREQ=HOURLY;INTERVAL=10",
                                     "FREQ=MONTHLY;BYMONTHDAY=-1"]))
        if rule:
            v.add("rrule", icalendar.vRecur.from_ical(rule))
        v.add("x-burst-demand", f"web={draw(st.integers(1, 500))}")
        events.append(v)
    return events


CALENDAR_BREAKS = [
    ("DTSTART", "DTSTART;TZID=Mars/Base:20270601T200000"), ("DTSTART", "DTSTART:2027060"),
    ("DTSTART", "DTSTART:99991231T230000Z"), ("DTSTART", "DTSTART;TZID=EST5EDT,M3.2.0:20270601T200000"),
    ("RRULE", "RRULE:FREQ=DAILY;INTERVAL=-1"), ("RRULE", "RRULE:;;;=="), ("RRULE", "RRULE:FREQ=SECONDLY"),
    ("RRULE", "RRULE:FREQ=MINUTELY"), ("RRULE", "RRULE:FREQ=DAILY;BYHOUR=99"), ("RRULE", "RRULE:FREQ=SOMETIMES"),
    ("DURATION", "DURATION:PTXH"), ("DURATION", "DURATION:-PT1H"), ("DURATION", "DURATION:P99999999D"),
    ("X-BURST-DEMAND", "X-BURST-DEMAND:db=3"), ("X-BURST-DEMAND", "X-BURST-DEMAND:web=0"),
    ("X-BURST-DEMAND", "X-BURST-DEMAND:web=x"), ("EXDATE", "EXDATE:20270602T200000Z"),
    ("X-BURST-LEAD-SECONDS", "X-BURST-LEAD-SECONDS:soon"), ("X-BURST-LEAD-SECONDS", "X-BURST-LEAD-SECONDS:-5"),
    ("X-BURST-LEAD-SECONDS", "X-BURST-LEAD-SECONDS:inf"), ("X-BURST-NAME", "X-BURST-NAME:[/x]"),
    ("whole", b"\x00\x01 not a calendar"), ("whole", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
]


def _replace_property(event: bytes, key: str, line: str) -> bytes:
    """`event` (one VEVENT's bytes) with its `key` property replaced by `line` (added
    when it has none; DTEND goes when a DURATION comes)."""
    kept = [x for x in event.split(b"\r\n") if not x.upper().startswith((key.encode(), key.encode() + b";"))
            and not (key == "DURATION" and x.upper().startswith(b"DTEND"))]
    end = kept.index(b"END:VEVENT")
    return b"\r\n".join(kept[:end] + [line.encode()] + kept[end:])


@given(events=calendars(), broken=st.none() | st.sampled_from(CALENDAR_BREAKS), which=st.integers(0, 10))
def test_calendars(world, events, broken, which):
    cal = icalendar.Calendar()
    cal.add("prodid", "-//fuzz//EN")
    cal.add("version", "2.0")
    for v in events:
        cal.add_component(v)
    cal.add_missing_timezones()
    data = cal.to_ical()
    if broken is not None:
        key, line = broken
        if key == "whole":
            data = line
        else:
            parts = data.split(b"BEGIN:VEVENT")
            i = 1 + which % len(events)
            head, sep, tail = parts[i].partition(b"END:VEVENT")
            parts[i] = _replace_property(b"BEGIN:VEVENT" + head + sep, key, line)[len(b"BEGIN:VEVENT"):] + tail
            data = b"BEGIN:VEVENT".join(parts)
    with world.fresh() as w:
        path = w.dir / "team.ics"
        path.write_bytes(data)
        check(["calendar", "import", str(path), "-c", str(w.config)], w.db, valid=broken is None, names="team.ics",
              kind="calendars")


# -- the grammars on their own -----------------------------------------------------------

@given(st.text(max_size=60))
def test_a_host_name_either_matches_the_grammar_or_is_refused_in_one_line(text):
    from burst.errors import InputError

    try:
        assert HOST.check(text) == text
        assert "/" not in text and ".." not in text and not any(c.isspace() for c in text)
    except InputError as exc:
        assert "\n" not in str(exc)


@given(st.text(max_size=30))
def test_any_duration_text_is_parsed_or_refused_in_one_line(text):
    from burst.durations import MAX_DURATION, parse_seconds
    from burst.errors import InputError

    try:
        seconds = parse_seconds(text)
        assert math.isfinite(seconds) and 0 < seconds <= MAX_DURATION.total_seconds()
    except InputError as exc:
        assert "\n" not in str(exc)


assert CONFIG  # the world's config is the one bad_input writes
