"""Accounts, roles, permissions, passwords, sessions and API tokens."""
