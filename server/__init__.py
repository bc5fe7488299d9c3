"""Carnet server package."""
