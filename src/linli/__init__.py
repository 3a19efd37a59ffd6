"""Linli (邻里): smart-community platform."""

__version__ = "0.1.0"
