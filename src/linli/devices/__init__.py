"""Device hub: the device register, the open event schema, ingest from any vendor, the event store."""
