"""Blueprints: thin views that parse, call a service or flow, render or redirect."""
