"""The lab's service image: a tiny busybox image built locally (no registry outside the
machine is reachable) and pushed to the lab's own registry, from which every new lab
host pulls it as a cloud host pulls from a regional mirror."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from burst.lab.system import LabError

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "sleep", "nc", "httpd", "cat", "echo", "hostname")
INDEX_HTML = b"burst lab web\n"


def rootfs_tar() -> bytes:
    """/bin/busybox plus applet links and a page for httpd, as an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "www", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(INDEX_HTML), 0o644
        tar.addfile(info, io.BytesIO(INDEX_HTML))
    return buf.getvalue()


def build_and_push(client, repository: str, tag: str) -> str:
    """Import the image into the daemon behind `client` and push it to the registry
    named in `repository`. Returns `repository:tag`."""
    client.api.import_image_from_data(rootfs_tar(), repository=repository, tag=tag)
    for line in client.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise LabError(f"push of {repository}:{tag} failed: {line['error']}")
    return f"{repository}:{tag}"

