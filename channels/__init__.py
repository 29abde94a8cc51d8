"""Messaging connectors of our own (see secure.py)."""
