"""Every table of every domain, imported in one place so metadata (and Alembic) sees them all."""

from __future__ import annotations

from linli.areas import models as areas_models
from linli.core import audit, media, outbox
from linli.core.auth import models as auth_models
from linli.db import Base
from linli.devices import models as devices_models
from linli.devices.mappings import models as mappings_models
from linli.registry import models as registry_models
from linli.vision import models as vision_models

metadata = Base.metadata

__all__ = [
    "areas_models",
    "audit",
    "auth_models",
    "devices_models",
    "mappings_models",
    "media",
    "metadata",
    "outbox",
    "registry_models",
    "vision_models",
]
