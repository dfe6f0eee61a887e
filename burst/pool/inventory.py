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
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burst.pool.errors import InventoryError

DEFAULT_ZONE = "onprem"
_CPU_VARS = ("cpu", "burst_cpu", "ansible_processor_vcpus")
_MEMORY_GIB_VARS = ("memory_gib", "burst_memory_gib")
_MEMORY_UNITS = {"m": 1 / 1024, "mb": 1 / 1024, "mib": 1 / 1024, "g": 1.0, "gb": 1.0, "gib": 1.0,
                 "t": 1024.0, "tb": 1024.0, "tib": 1024.0}
_RANGE = re.compile(r"\[([0-9]+):([0-9]+)\]")


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


def read_inventory(path: str | Path) -> list[InventoryHost]:
    """The hosts of an inventory file, sorted by name."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InventoryError(f"{path}: no such inventory file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() in (".yml", ".yaml", ".json"):
        groups = _parse_yaml(path, text)
    else:
        groups = _parse_ini(path, text)
    return _resolve(path, groups)


# -- INI ---------------------------------------------------------------------------

def _parse_ini(path: Path, text: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
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
            groups.setdefault(section, _Group(section))
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
            group.children.append(words[0])
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
            for host in _expand_range(where, name):
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
    width = len(start) if start.startswith("0") else 0
    out = []
    for n in range(int(start), int(end) + 1):
        out.extend(_expand_range(where, name[:match.start()] + str(n).zfill(width) + name[match.end():]))
    return out


# -- YAML --------------------------------------------------------------------------

def _parse_yaml(path: Path, text: str) -> dict[str, _Group]:
    import yaml  # PyYAML comes with ansible-core

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise InventoryError(f"{path}{line}: malformed YAML: {exc.problem or exc.context}") from None
    groups: dict[str, _Group] = {"all": _Group("all")}
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
        return constructor.construct_object(node, deep=True)

    def walk_group(name: str, node) -> None:
        group = groups.setdefault(name, _Group(name))
        for key_node, value_node in mapping(node, f"group {name!r}"):
            key = scalar_key(key_node)
            if key == "hosts":
                for host_node, host_value in mapping(value_node, f"{name}.hosts"):
                    host_vars = {}
                    for var_node, var_value in mapping(host_value, f"host {host_node.value!r}"):
                        host_vars[scalar_key(var_node)] = plain(var_value)
                    for host in _expand_range(where(host_node), scalar_key(host_node)):
                        own, line = group.hosts.get(host, ({}, host_node.start_mark.line + 1))
                        group.hosts[host] = ({**own, **host_vars}, line)
            elif key == "vars":
                for var_node, var_value in mapping(value_node, f"{name}.vars"):
                    group.vars[scalar_key(var_node)] = plain(var_value)
            elif key == "children":
                for child_node, child_value in mapping(value_node, f"{name}.children"):
                    child = scalar_key(child_node)
                    group.children.append(child)
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
            if child not in groups:
                raise InventoryError(f"{path}: group {group.name!r} lists unknown child group {child!r}")
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
    cpu = _positive(where, name, cpu[0], cpu[1])
    memory = _memory_gib(where, name, host_vars)
    port = host_vars.get("ansible_port", 22)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise InventoryError(f"{where}: host {name!r}: ansible_port must be a number, got {port!r}") from None
    consumed = {*_CPU_VARS, *_MEMORY_GIB_VARS, "ansible_memtotal_mb", "memory", "ansible_host",
                "ansible_port", "burst_zone"}
    return InventoryHost(
        name=name,
        address=str(host_vars.get("ansible_host", name)),
        port=port,
        cpu=cpu,
        memory_gib=memory,
        zone=str(host_vars.get("burst_zone", DEFAULT_ZONE)),
        vars={k: v for k, v in sorted(host_vars.items()) if k not in consumed},
        line=line,
    )


def _first(host_vars: dict[str, Any], names: Iterable[str]) -> tuple[str, Any] | None:
    for key in names:
        if key in host_vars:
            return key, host_vars[key]
    return None


def _positive(where: str, name: str, key: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InventoryError(f"{where}: host {name!r}: {key} must be a number, got {value!r}") from None
    if not number > 0:
        raise InventoryError(f"{where}: host {name!r}: {key} must be above 0, got {value!r}")
    return number


def _memory_gib(where: str, name: str, host_vars: dict[str, Any]) -> float:
    found = _first(host_vars, _MEMORY_GIB_VARS)
    if found is not None:
        return _positive(where, name, *found)
    if "ansible_memtotal_mb" in host_vars:
        return _positive(where, name, "ansible_memtotal_mb", host_vars["ansible_memtotal_mb"]) / 1024
    if "memory" in host_vars:
        value = str(host_vars["memory"]).strip()
        match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)", value)
        if match is None or match.group(2).lower() not in _MEMORY_UNITS:
            raise InventoryError(f"{where}: host {name!r}: memory must be a size with a unit "
                                 f"(64G, 64GiB, 65536M), got {value!r}")
        return _positive(where, name, "memory", float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])
    raise InventoryError(f"{where}: host {name!r} has no memory (set one of "
                         f"{', '.join((*_MEMORY_GIB_VARS, 'ansible_memtotal_mb', 'memory'))})")
