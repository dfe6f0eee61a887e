"""Find providers through the `burst.providers` entry-point group.

The core never imports a provider package directly, so a cloud SDK is imported only
when its provider is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from burst.provider import Provider, ProviderContext
from burst.provider.errors import ProviderConfigError

GROUP = "burst.providers"


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def known_providers() -> list[str]:
    return sorted(_entry_points())


def provider_class(name: str) -> type[Provider]:
    ep = _entry_points().get(name)
    if ep is None:
        raise ProviderConfigError(
            f"unknown provider {name!r} (known: {', '.join(known_providers()) or 'none installed'})"
        )
    return ep.load()


def make_provider(name: str, context: ProviderContext, options: Mapping[str, Any]) -> Provider:
    return provider_class(name)(context, options)
