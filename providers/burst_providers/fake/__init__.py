"""The fake provider (provider.py), registered as `fake`: no cloud behind it, for
`burst demo --fake`, tests and failure drills."""

from burst_providers.fake.provider import Faults, FakeProvider

__all__ = ["FakeProvider", "Faults"]
