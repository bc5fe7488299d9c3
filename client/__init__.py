"""Carnet client package."""
