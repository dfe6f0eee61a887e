"""Ansible inventories (INI and YAML) read into pool hosts, and malformed ones refused
with file:line."""

from __future__ import annotations

import textwrap

import pytest

from burst.pool.errors import InventoryError
from burst.pool.inventory import read_inventory


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def by_name(hosts):
    return {h.name: h for h in hosts}


def test_ini_groups_children_vars_ranges_and_precedence(tmp_path):
    path = write(tmp_path, "hosts.ini", """
        # the mall unit
        ungrouped01 cpu=2 memory_gib=4

        [web]
        web[01:03] cpu=8 memory_gib=32
        web02 ansible_host=10.0.0.2 ansible_port=2202

        [db]
        db01 ansible_host="10.0.0.9" cpu=16 memory=64G
        db02 cpu=16 ansible_memtotal_mb=131072

        [backend:children]
        web
        db

        [backend:vars]
        ansible_user=deploy
        burst_zone=dc-east

        [db:vars]
        burst_zone = dc-west
        """)
    hosts = by_name(read_inventory(path))
    assert sorted(hosts) == ["db01", "db02", "ungrouped01", "web01", "web02", "web03"]
    web02 = hosts["web02"]
    assert (web02.address, web02.port, web02.cpu, web02.memory_gib) == ("10.0.0.2", 2202, 8, 32)
    assert web02.zone == "dc-east" and web02.vars == {"ansible_user": "deploy"}
    assert hosts["web01"].address == "web01" and hosts["web01"].port == 22
    # a child group's vars win over its parent's
    assert hosts["db01"].zone == "dc-west" and hosts["db01"].memory_gib == 64 and hosts["db01"].address == "10.0.0.9"
    assert hosts["db02"].memory_gib == 128
    assert hosts["ungrouped01"].zone == "onprem"
    assert hosts["web03"].line == 5 and hosts["db01"].line == 9


def test_yaml_inventory_with_nested_children_and_vars(tmp_path):
    path = write(tmp_path, "hosts.yml", """
        all:
          vars:
            ansible_user: ops
            memory_gib: 16
          children:
            search:
              vars:
                cpu: 4
              hosts:
                s01:
                  ansible_host: 10.1.0.1
                s02:
                  ansible_host: 10.1.0.2
                  cpu: 8
                  memory: 32768M
              children:
                search_big:
                  hosts:
                    big[1:2]:
                      cpu: 32
                      memory_gib: 256
        """)
    hosts = by_name(read_inventory(path))
    assert sorted(hosts) == ["big1", "big2", "s01", "s02"]
    assert (hosts["s01"].cpu, hosts["s01"].memory_gib, hosts["s01"].address) == (4, 16, "10.1.0.1")
    # the host's own memory wins over the memory_gib it inherits, whatever the spelling
    assert (hosts["s02"].cpu, hosts["s02"].memory_gib) == (8, 32)
    assert (hosts["big2"].cpu, hosts["big2"].memory_gib) == (32, 256)
    assert hosts["big1"].vars == {"ansible_user": "ops"}
    assert hosts["s02"].line == 12


@pytest.mark.parametrize("text, line, words", [
    ("[web]\nweb01 cpu=8 memory_gib=32\nweb02 cpu=8 memory_gib\n", 3, "malformed host variable"),
    ("[web\nweb01 cpu=8 memory_gib=32\n", 1, "malformed section header"),
    ("[web]\nweb01 cpu=8 memory_gib=32 ansible_user='deploy\n", 2, "malformed line"),
    ("[web]\nweb01 cpu=eight memory_gib=32\n", 2, "cpu must be a number"),
    ("[web]\nweb01 cpu=8\n", 2, "has no memory"),
    ("[web]\nweb01 memory_gib=8\n", 2, "has no cpu"),
    ("[web]\nweb01 cpu=8 memory=32 parsecs\n", 2, "malformed host variable"),
    ("[web]\nweb01 cpu=8 memory=32X\n", 2, "memory must be a size"),
    ("[web]\nweb01 cpu=0 memory_gib=32\n", 2, "must be above 0"),
    ("[web:vars]\nansible user = deploy\n[web]\nweb01 cpu=1 memory_gib=1\n", 2, "malformed variable line"),
    ("[web]\nweb[a:c] cpu=1 memory_gib=1\n", 2, "malformed host range"),
    ("[all:children]\nweb db\n", 2, ":children section"),
])
def test_malformed_ini_says_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(InventoryError) as err:
        read_inventory(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize("text, line, words", [
    ("all:\n  hosts:\n    a: {cpu: 1, memory_gib: 1\n", 4, "malformed YAML"),
    ("all:\n  hosts:\n    a:\n      cpu: 1\n", 3, "has no memory"),
    ("all:\n  hostz:\n    a: {cpu: 1, memory_gib: 1}\n", 2, "unknown key 'hostz'"),
    ("all:\n  hosts:\n    - a\n", 3, "must be a mapping"),
])
def test_malformed_yaml_says_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError) as err:
        read_inventory(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message


def test_missing_file_and_unknown_child_group(tmp_path):
    with pytest.raises(InventoryError, match="no such inventory file"):
        read_inventory(tmp_path / "nope.ini")
    path = write(tmp_path, "kids.ini", """
        [all:children]
        web
        [web:children]
        ghosts
        """)
    # a group only named as a child is a mistake to name (issue 11), not an empty group
    with pytest.raises(InventoryError, match=r"kids.ini:4: group 'web' lists child group 'ghosts', which the file "
                                             r"does not define"):
        read_inventory(path)
