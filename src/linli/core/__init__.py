"""Cross-cutting pieces every domain needs: auth and scopes, audit, PII, errors, paging, i18n, time."""
