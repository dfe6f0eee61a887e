"""The small RPM repository burst ships for the lab.

In production, hosts install their packages from the internal RPM mirror. The lab has
no mirror, so burst builds one: a tiny noarch package, `burst-node-agent` (a script
and a version file), built with rpmbuild, in a repository made with createrepo_c.
`initialise.yml` then installs it with dnf exactly as it would from the mirror: only
the repository URL (an inventory variable) differs.

`ensure_lab_repo(directory)` is idempotent: a repository that already holds the
package at the wanted version is left as it is, so every lab and test can call it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from burst.errors import BurstError

AGENT_PACKAGE = "burst-node-agent"
AGENT_VERSION = "1.0.0"
AGENT_RELEASE = "1"

#: where the package puts its files, relative to the install root
AGENT_VERSION_FILE = "usr/share/burst-node-agent/version"

_TOOLS = ("rpmbuild", "createrepo_c")

_SPEC = """\
Name:           {name}
Version:        {version}
Release:        {release}
Summary:        burst node agent (lab package)
License:        Apache-2.0
BuildArch:      noarch
# the lab's install roots start empty: no /bin/sh to satisfy an automatic requirement
AutoReq:        no

%description
A tiny package that burst builds for its lab, so that host initialisation installs a
real RPM from a real repository with dnf, as it does from the internal mirror.

%install
mkdir -p %{{buildroot}}/usr/share/{name} %{{buildroot}}/usr/bin
echo {version}-{release} > %{{buildroot}}/usr/share/{name}/version
printf '#!/bin/sh\\ncat /usr/share/{name}/version\\n' > %{{buildroot}}/usr/bin/{name}
chmod 0755 %{{buildroot}}/usr/bin/{name}

%files
/usr/share/{name}/version
/usr/bin/{name}
"""


class RpmRepoError(BurstError):
    """The lab's RPM repository could not be built."""


def rpm_file_name(version: str = AGENT_VERSION, release: str = AGENT_RELEASE) -> str:
    return f"{AGENT_PACKAGE}-{version}-{release}.noarch.rpm"


def ensure_lab_repo(directory: Path, version: str = AGENT_VERSION, release: str = AGENT_RELEASE) -> Path:
    """Make `directory` a dnf repository holding burst-node-agent `version`; return it.

    Its URL for the inventory is `directory.as_uri()` (`file://...`)."""
    directory = Path(directory).resolve()
    rpm = directory / rpm_file_name(version, release)
    if rpm.exists() and (directory / "repodata" / "repomd.xml").exists():
        return directory
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise RpmRepoError(
            f"{', '.join(missing)} not found: install the Debian packages rpm and createrepo-c"
        )
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="burst-rpmbuild-") as top:
        spec = Path(top) / f"{AGENT_PACKAGE}.spec"
        spec.write_text(_SPEC.format(name=AGENT_PACKAGE, version=version, release=release))
        _run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--quiet", str(spec)])
        built = Path(top) / "RPMS" / "noarch" / rpm.name
        # copy then rename: a concurrent reader never sees half a package
        shutil.copyfile(built, rpm.with_suffix(".part"))
        rpm.with_suffix(".part").rename(rpm)
    _run(["createrepo_c", "--quiet", "--update", str(directory)])
    return directory


def lab_repo_vars(directory: Path) -> dict[str, Any]:
    """The inventory variables that point initialise.yml at a lab repository (made by
    `ensure_lab_repo`). Production names its https mirror and keeps GPG checks on."""
    return {
        "burst_rpm_repo_url": Path(directory).resolve().as_uri(),
        # the lab's package is not signed
        "burst_rpm_gpgcheck": False,
        # an empty install root has no release package for dnf to read it from
        "burst_dnf_releasever": "9",
    }


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise RpmRepoError(f"{argv[0]} failed (rc {proc.returncode}): {last}")
