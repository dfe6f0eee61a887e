"""The one place where the lab's errors become provider errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from burst.lab import LabError, LabNotUpError
from burst.provider.errors import ProviderConfigError, ProviderError

PROVIDER = "lab"


@contextlib.contextmanager
def map_lab_errors() -> Iterator[None]:
    try:
        yield
    except LabNotUpError as exc:  # fatal until someone runs `burst lab up`
        raise ProviderConfigError(str(exc), code="LabNotUp", provider=PROVIDER) from exc
    except LabError as exc:
        raise ProviderError(str(exc), code="LabError", provider=PROVIDER) from exc
