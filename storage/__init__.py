"""Carnet storage package."""
