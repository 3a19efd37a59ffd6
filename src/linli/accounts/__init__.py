"""Sign-in, API tokens, user management and the audit log's pages and API."""
