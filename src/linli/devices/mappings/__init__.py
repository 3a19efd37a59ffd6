"""Mapping documents kept in the database, batch uploads of old devices' exports, and pull sources."""
