"""Carnet moderation package."""
