"""Carnet crypto package."""
