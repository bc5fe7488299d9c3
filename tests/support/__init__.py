"""Helpers shared by the server, storage and end-to-end tests (no mocks of our code)."""
