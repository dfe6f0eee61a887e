"""The one place where the pool's errors become provider errors.

The pool has no SDK: its "API" is the ledger in the store. A database that cannot be
reached or a serialisation failure is transient (the claim is idempotent on its
request id, so a retry is safe); a lease the ledger refuses is `NotOwnedError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from burst.errors import StoreError
from burst.pool.errors import PoolError
from burst.pool.leases import NotLeasedByCluster
from burst.provider.errors import NotOwnedError, ProviderConfigError, TransientProviderError

PROVIDER = "onprem"


@contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except NotLeasedByCluster as exc:
        raise NotOwnedError(str(exc), provider=PROVIDER) from None
    except IntegrityError as exc:
        # the open-lease unique index refused a second lease of a host: another
        # claim won that host; the caller retries with the same request id
        raise TransientProviderError(f"pool: a host was leased concurrently ({_first_line(exc)})",
                                     code="lease_conflict", provider=PROVIDER) from None
    except (OperationalError, DBAPIError) as exc:
        raise TransientProviderError(f"pool ledger unavailable: {_first_line(exc)}", code="store",
                                     provider=PROVIDER) from None
    except StoreError as exc:
        raise TransientProviderError(f"pool ledger unavailable: {exc}", code="store", provider=PROVIDER) from None
    except PoolError as exc:
        raise ProviderConfigError(f"pool: {exc}", provider=PROVIDER) from None


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
