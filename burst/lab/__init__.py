"""The local lab: hosts as network namespaces with their own sshd and dockerd, a
swarm manager, on-prem workers running the base service, and an image registry.
See burst/lab/lab.py for the layout and docs/lab.md for how to use it."""

from burst.lab.lab import DEFAULT_NAME, DEFAULT_ROOT, Lab, LabHost, preflight, ssh_run
from burst.lab.system import LabError, LabNotUpError

__all__ = ["DEFAULT_NAME", "DEFAULT_ROOT", "Lab", "LabError", "LabHost", "LabNotUpError", "preflight", "ssh_run"]
