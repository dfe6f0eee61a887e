"""Fakes and emulators shipped with burst, for tests, demos and failure drills."""
