"""Shared web layer: request dependencies, layout, static assets, console shell."""
