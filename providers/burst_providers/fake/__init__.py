"""The fake provider: burst.testing.fake_provider, registered as `fake`."""

from burst.testing.fake_provider import FakeProvider

__all__ = ["FakeProvider"]
