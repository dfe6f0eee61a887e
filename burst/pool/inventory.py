"""Read a business unit's Ansible inventory (INI or YAML) into pool hosts.

Only what the pool needs is interpreted: hosts, groups (`:children`, `:vars`, YAML
`children`/`vars`), numeric host ranges (`web[01:20]`), `ansible_host`,
`ansible_port`, and each host's size, from the first of these variables it has:

  cpu:     cpu | burst_cpu | ansible_processor_vcpus
  memory:  memory_gib | burst_memory_gib | ansible_memtotal_mb (MiB)
           | memory (with a unit: 64G, 64GiB, 65536M, 64T...)
  zone:    burst_zone (default "onprem")

Variables apply with Ansible's precedence as far as the pool cares: a host's own
variables win over its groups', a child group's over its parent's. Every problem is
one `InventoryError` that starts with `file:line`.

Read strictly: a `.json` file is JSON, a `.yml`/`.yaml` file YAML, anything else INI;
host names follow burst's grammar (burst.names.HOST: no '/', no '..', no spaces);
sizes are finite numbers above 0 and at most MAX_CPU cpus and MAX_MEMORY_GIB GiB (a
YAML `true` is not a number); ports are 1-65535; a host listed twice with different
sizes is refused, as is a `:children` entry naming a group the file never defines;
at most MAX_HOSTS hosts.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burst.config import MAX_CPU, MAX_MEMORY_GIB
from burst.errors import InputError
from burst.names import HOST
from burst.pool.errors import InventoryError
from burst.text import read_utf8

DEFAULT_ZONE = "onprem"
_CPU_VARS = ("cpu", "burst_cpu", "ansible_processor_vcpus")
_MEMORY_GIB_VARS = ("memory_gib", "burst_memory_gib")
_MEMORY_UNITS = {"m": 1 / 1024, "mb": 1 / 1024, "mib": 1 / 1024, "g": 1.0, "gb": 1.0, "gib": 1.0,
                 "t": 1024.0, "tb": 1024.0, "tib": 1024.0}
_RANGE = re.compile(r"\[([0-9]+):([0-9]+)\]")
_GROUP = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_ZONE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
#: hosts one inventory may list (ranges expanded)
MAX_HOSTS = 100_000
_SIZE_FAMILIES = {**{k: "cpu" for k in _CPU_VARS},
                  **{k: "memory" for k in (*_MEMORY_GIB_VARS, "ansible_memtotal_mb", "memory")}}


@dataclass(frozen=True)
class InventoryHost:
    name: str
    address: str
    port: int
    cpu: float
    memory_gib: float
    zone: str
    #: every variable except the ones above, for the provisioning steps
    vars: dict[str, Any]
    #: where the host is defined, for messages
    line: int


@dataclass
class _Group:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    #: host name -> (its own variables, line)
    hosts: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    #: the file gives the group (a section, or a table with content), not only names it
    defined: bool = False
    #: child -> the line that lists it
    child_lines: dict[str, int] = field(default_factory=dict)


class _Sizes:
    """The sizes each host was given on its own lines: a host listed again with a
    different size is a mistake to point at, not something to resolve silently."""

    def __init__(self, path: Path):
        self.path = path
        self.seen: dict[str, dict[str, tuple[str, Any, int]]] = {}
        self.count = 0

    def note(self, host: str, host_vars: dict[str, Any], line: int) -> None:
        given = self.seen.get(host)
        if given is None:
            self.count += 1
            if self.count > MAX_HOSTS:
                raise InventoryError(f"{self.path}:{line}: more than {MAX_HOSTS} hosts in one inventory")
            given = self.seen[host] = {}
        for key, value in host_vars.items():
            family = _SIZE_FAMILIES.get(key)
            if family is None:
                continue
            before = given.get(family)
            if before is not None and before[1] != value:
                raise InventoryError(f"{self.path}:{line}: host {host!r} is listed again with {key}={value!r}, "
                                     f"but line {before[2]} gives it {before[0]}={before[1]!r}; give a host one size")
            given[family] = (key, value, line)


def read_inventory(path: str | Path) -> list[InventoryHost]:
    """The hosts of an inventory file, sorted by name."""
    path = Path(path)
    text = read_utf8(path, InventoryError, "inventory", "an inventory is UTF-8 INI, YAML or JSON")
    sizes = _Sizes(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        groups = _parse_json(path, text, sizes)
    elif suffix in (".yml", ".yaml"):
        groups = _parse_yaml(path, text, sizes)
    else:
        groups = _parse_ini(path, text, sizes)
    return _resolve(path, groups)


def _host_names(where: str, name: str) -> list[str]:
    """The hosts a host pattern names (ranges expanded), each checked by the grammar."""
    names = _expand_range(where, name)
    for host in names:
        try:
            HOST.check(host)
        except InputError as exc:
            raise InventoryError(f"{where}: {exc}") from None
    return names


# -- INI ---------------------------------------------------------------------------

def _parse_ini(path: Path, text: str, sizes: _Sizes) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group("all", defined=True), "ungrouped": _Group("ungrouped", defined=True)}
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{path}:{number}"
        if line.startswith("["):
            match = re.fullmatch(r"\[([A-Za-z0-9_.-]+)(?::(vars|children))?\]", line)
            if match is None:
                raise InventoryError(f"{where}: malformed section header {line!r}")
            section, kind = match.group(1), match.group(2) or "hosts"
            groups.setdefault(section, _Group(section)).defined = True
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"{where}: malformed line ({exc}): {line!r}") from None
        if not words:
            continue
        group = groups[section]
        if kind == "children":
            if len(words) != 1:
                raise InventoryError(f"{where}: a :children section lists one group per line, got {line!r}")
            if not _GROUP.fullmatch(words[0]):
                raise InventoryError(f"{where}: malformed group name {words[0]!r}")
            group.children.append(words[0])
            group.child_lines.setdefault(words[0], number)
            groups.setdefault(words[0], _Group(words[0]))
        elif kind == "vars":
            key, value = _ini_var(where, line)
            group.vars[key] = value
        else:
            name, *assignments = words
            if "=" in name:
                raise InventoryError(f"{where}: malformed host line, expected 'NAME key=value...': {line!r}")
            host_vars = {}
            for word in assignments:
                key, sep, value = word.partition("=")
                if not sep or not key:
                    raise InventoryError(f"{where}: malformed host variable {word!r}, expected key=value")
                host_vars[key] = _ini_value(value)
            for host in _host_names(where, name):
                sizes.note(host, host_vars, number)
                own, _ = group.hosts.get(host, ({}, number))
                group.hosts[host] = ({**own, **host_vars}, number)
    return groups


def _ini_var(where: str, line: str) -> tuple[str, Any]:
    key, sep, value = line.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or " " in key:
        raise InventoryError(f"{where}: malformed variable line, expected 'key=value': {line!r}")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise InventoryError(f"{where}: malformed value ({exc}): {line!r}") from None
    return key, _ini_value(" ".join(words))


def _ini_value(value: str) -> Any:
    """INI values are strings; numbers are read as numbers, as Ansible does."""
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _expand_range(where: str, name: str) -> list[str]:
    match = _RANGE.search(name)
    if match is None:
        if "[" in name or "]" in name:
            raise InventoryError(f"{where}: malformed host range {name!r} (only numeric [start:end] is supported)")
        return [name]
    start, end = match.group(1), match.group(2)
    if int(end) < int(start):
        raise InventoryError(f"{where}: host range {name!r} ends before it starts")
    if int(end) - int(start) >= MAX_HOSTS:
        raise InventoryError(f"{where}: host range {name!r} names more than {MAX_HOSTS} hosts")
    width = len(start) if start.startswith("0") else 0
    out = []
    for n in range(int(start), int(end) + 1):
        out.extend(_expand_range(where, name[:match.start()] + str(n).zfill(width) + name[match.end():]))
    return out


# -- YAML --------------------------------------------------------------------------

def _parse_json(path: Path, text: str, sizes: _Sizes) -> dict[str, _Group]:
    """A JSON inventory (Ansible's YAML layout, written as JSON): checked as JSON, then
    walked as the YAML it also is (for the line numbers)."""
    try:
        json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not a number")))
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise InventoryError(f"{path}: malformed JSON: {exc}") from None
    return _parse_yaml(path, text, sizes, kind="JSON")


def _parse_yaml(path: Path, text: str, sizes: _Sizes, kind: str = "YAML") -> dict[str, _Group]:
    import yaml  # PyYAML comes with ansible-core

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise InventoryError(f"{path}{line}: malformed {kind}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: malformed {kind}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    groups: dict[str, _Group] = {"all": _Group("all", defined=True)}
    if root is None:
        return groups
    constructor = yaml.constructor.SafeConstructor()

    def where(node) -> str:
        return f"{path}:{node.start_mark.line + 1}"

    def mapping(node, what: str) -> list[tuple[Any, Any]]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.MappingNode):
            raise InventoryError(f"{where(node)}: {what} must be a mapping")
        return node.value

    def scalar_key(node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise InventoryError(f"{where(node)}: expected a name")
        return str(node.value)

    def plain(node) -> Any:
        try:
            return constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise InventoryError(f"{where(node)}: malformed value: {str(exc).splitlines()[0]}") from None

    def walk_group(name: str, node) -> None:
        if not _GROUP.fullmatch(name):
            raise InventoryError(f"{where(node)}: malformed group name {name!r}")
        group = groups.setdefault(name, _Group(name))
        content = mapping(node, f"group {name!r}")
        group.defined = group.defined or bool(content)
        for key_node, value_node in content:
            key = scalar_key(key_node)
            if key == "hosts":
                for host_node, host_value in mapping(value_node, f"{name}.hosts"):
                    host_vars = {}
                    for var_node, var_value in mapping(host_value, f"host {host_node.value!r}"):
                        host_vars[scalar_key(var_node)] = plain(var_value)
                    for host in _host_names(where(host_node), scalar_key(host_node)):
                        sizes.note(host, host_vars, host_node.start_mark.line + 1)
                        own, line = group.hosts.get(host, ({}, host_node.start_mark.line + 1))
                        group.hosts[host] = ({**own, **host_vars}, line)
            elif key == "vars":
                for var_node, var_value in mapping(value_node, f"{name}.vars"):
                    group.vars[scalar_key(var_node)] = plain(var_value)
            elif key == "children":
                for child_node, child_value in mapping(value_node, f"{name}.children"):
                    child = scalar_key(child_node)
                    group.children.append(child)
                    group.child_lines.setdefault(child, child_node.start_mark.line + 1)
                    walk_group(child, child_value)
            else:
                raise InventoryError(f"{where(key_node)}: unknown key {key!r} in group {name!r} "
                                     "(expected hosts, vars or children)")

    for key_node, value_node in mapping(root, "the inventory"):
        walk_group(scalar_key(key_node), value_node)
    return groups


# -- resolving variables -----------------------------------------------------------

def _resolve(path: Path, groups: dict[str, _Group]) -> list[InventoryHost]:
    for group in groups.values():
        for child in group.children:
            if child not in groups or not groups[child].defined:
                raise InventoryError(f"{path}:{group.child_lines.get(child, '?')}: group {group.name!r} lists child "
                                     f"group {child!r}, which the file does not define (no [{child}] section "
                                     "or table with hosts, vars or children)")
    # Every top-level group is a child of "all"; parents come before children.
    children_of_someone = {c for g in groups.values() for c in g.children}
    roots = [g for name, g in groups.items() if name != "all" and name not in children_of_someone]
    groups["all"].children = list(dict.fromkeys([*groups["all"].children, *(g.name for g in roots)]))

    merged: dict[str, tuple[dict[str, Any], int]] = {}

    def visit(group: _Group, inherited: dict[str, Any], seen: tuple[str, ...]) -> None:
        if group.name in seen:
            raise InventoryError(f"{path}: group {group.name!r} contains itself")
        scope = _override(inherited, group.vars)
        for host, (own, line) in group.hosts.items():
            prev, prev_line = merged.get(host, ({}, line))
            merged[host] = (_override(_override(prev, scope), own), min(prev_line, line))
        for child in group.children:
            visit(groups[child], scope, (*seen, group.name))

    visit(groups["all"], {}, ())
    return sorted((_host(path, name, hv, line) for name, (hv, line) in merged.items()), key=lambda h: h.name)


_FAMILIES = (frozenset(_CPU_VARS), frozenset((*_MEMORY_GIB_VARS, "ansible_memtotal_mb", "memory")))


def _override(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`; a size given in `top` under any of its names replaces the
    size `base` gives under another (a host's `memory: 64G` beats its group's
    `memory_gib: 16`)."""
    out = dict(base)
    for family in _FAMILIES:
        if family & top.keys():
            for key in family:
                out.pop(key, None)
    out.update(top)
    return out


def _host(path: Path, name: str, host_vars: dict[str, Any], line: int) -> InventoryHost:
    where = f"{path}:{line}"
    cpu = _first(host_vars, _CPU_VARS)
    if cpu is None:
        raise InventoryError(f"{where}: host {name!r} has no cpu (set one of {', '.join(_CPU_VARS)})")
    cpu = _positive(where, name, cpu[0], cpu[1], MAX_CPU)
    memory = _memory_gib(where, name, host_vars)
    port = host_vars.get("ansible_port", 22)
    if isinstance(port, str) and re.fullmatch(r"\d{1,5}", port.strip()):
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InventoryError(f"{where}: host {name!r}: ansible_port must be a port number 1-65535, got {port!r}")
    address = host_vars.get("ansible_host", name)
    if not _address_ok(address):
        raise InventoryError(f"{where}: host {name!r}: ansible_host must be a host name or an IP address, "
                             f"got {address!r}")
    zone = host_vars.get("burst_zone", DEFAULT_ZONE)
    if not isinstance(zone, str) or not _ZONE.fullmatch(zone):
        raise InventoryError(f"{where}: host {name!r}: burst_zone must be a name (letters, digits, _ . -), "
                             f"got {zone!r}")
    consumed = {*_CPU_VARS, *_MEMORY_GIB_VARS, "ansible_memtotal_mb", "memory", "ansible_host",
                "ansible_port", "burst_zone"}
    return InventoryHost(
        name=name,
        address=address,
        port=port,
        cpu=cpu,
        memory_gib=memory,
        zone=zone,
        vars={k: v for k, v in sorted(host_vars.items()) if k not in consumed},
        line=line,
    )


def _first(host_vars: dict[str, Any], names: Iterable[str]) -> tuple[str, Any] | None:
    for key in names:
        if key in host_vars:
            return key, host_vars[key]
    return None


def _address_ok(address: Any) -> bool:
    if not isinstance(address, str):
        return False
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        return HOST.ok(address)


def _positive(where: str, name: str, key: str, value: Any, maximum: float) -> float:
    """A size: a finite number (not a bool, not text) above 0 and at most `maximum`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InventoryError(f"{where}: host {name!r}: {key} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= maximum:
        raise InventoryError(f"{where}: host {name!r}: {key} must be above 0 and at most {maximum:g}, got {value!r}")
    return number


def _memory_gib(where: str, name: str, host_vars: dict[str, Any]) -> float:
    found = _first(host_vars, _MEMORY_GIB_VARS)
    if found is not None:
        return _positive(where, name, *found, MAX_MEMORY_GIB)
    if "ansible_memtotal_mb" in host_vars:
        return _positive(where, name, "ansible_memtotal_mb", host_vars["ansible_memtotal_mb"],
                         MAX_MEMORY_GIB * 1024) / 1024
    if "memory" in host_vars:
        value = str(host_vars["memory"]).strip()
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)", value)
        if match is None or match.group(2).lower() not in _MEMORY_UNITS:
            raise InventoryError(f"{where}: host {name!r}: memory must be a size with a unit "
                                 f"(64G, 64GiB, 65536M), got {value!r}")
        return _positive(where, name, "memory", float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()],
                         MAX_MEMORY_GIB)
    raise InventoryError(f"{where}: host {name!r} has no memory (set one of "
                         f"{', '.join((*_MEMORY_GIB_VARS, 'ansible_memtotal_mb', 'memory'))})")
