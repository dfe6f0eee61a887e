"""One provider instance per configured tier, built on first use."""

from __future__ import annotations

import threading

from burst.config import Config
from burst.provider import Provider, ProviderContext
from burst.provider.registry import make_provider


class ProviderSet:
    def __init__(self, config: Config):
        self.config = config
        self._built: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def get(self, tier_name: str) -> Provider:
        with self._lock:
            if tier_name not in self._built:
                tier = self.config.tier(tier_name)
                context = ProviderContext(cluster=self.config.cluster.name, state_dir=self.config.state_dir,
                                          store_url=self.config.store_url)
                options = {k: v for k, v in tier.options.items() if k != "host_vars"}
                options["instance_types"] = [t.model_dump() for t in tier.instance_types]
                self._built[tier_name] = make_provider(tier.provider, context, options)
            return self._built[tier_name]

    def close(self) -> None:
        with self._lock:
            for provider in self._built.values():
                provider.close()
            self._built.clear()
