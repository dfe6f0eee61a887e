"""Initialise: RPMs and a masterless `puppet apply` (Ansible), `running -> initialising
-> initialised` or `init_failed`. The configuration hash the run applied is kept on
the host: a host initialised with the same hash is not initialised again."""

from burst.lifecycle import HostState as S
from burst.reconciler.phase import Phase

initialise = Phase("initialise", into=S.INITIALISING, ok=S.INITIALISED, fail=S.INIT_FAILED,
                   call=lambda ctx: ctx.initialiser.initialise, keep="config_hash")
