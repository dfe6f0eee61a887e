"""Cloud SDKs imported only when a provider uses them (SkyPilot's `sky/adaptors/` style).

A provider package declares its SDK modules once, at module level:

    boto3 = LazyImport("boto3", provider="aws", package="boto3")

and uses `boto3.session.Session()` as if it were the module. Nothing is imported until
the first attribute is read, so `import burst.cli` (and even importing the provider
package) never loads boto3 or aliyunsdkcore. A missing SDK is a `ProviderConfigError`
naming the package to install, not an ImportError traceback.

`quiet_loggers` are set to their level on first import: SDK debug lines carry signed
requests (access key ids, STS tokens), so they never reach burst's log.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from burst.provider.errors import ProviderConfigError


class LazyImport:
    def __init__(self, module: str, *, provider: str, package: str, quiet_loggers: Mapping[str, int] | None = None):
        self._name = module
        self._provider = provider
        self._package = package
        self._quiet = dict(quiet_loggers or {})
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def load(self) -> ModuleType:
        if self._module is None:
            with self._lock:
                if self._module is None:
                    try:
                        module = importlib.import_module(self._name)
                    except ImportError as exc:
                        raise ProviderConfigError(
                            f"{self._provider}: the SDK module {self._name} cannot be imported ({exc}); "
                            f"install {self._package}", provider=self._provider,
                        ) from None
                    for name, level in self._quiet.items():
                        logging.getLogger(name).setLevel(level)
                    self._module = module
        return self._module

    @property
    def loaded(self) -> bool:
        return self._module is not None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.load(), attr)

    def __repr__(self) -> str:
        return f"<LazyImport {self._name} ({'loaded' if self.loaded else 'not loaded'})>"
