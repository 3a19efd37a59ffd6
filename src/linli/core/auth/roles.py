"""Roles and what each may do. Scope (which areas) is separate: every user is bound to area subtrees."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The kinds of user a district deployment has."""

    DISTRICT_ADMIN = "district_admin"
    STREET_STAFF = "street_staff"
    COMMUNITY_WORKER = "community_worker"
    GRID_WORKER = "grid_worker"
    PROPERTY_STAFF = "property_staff"
    POLICE_LIAISON = "police_liaison"
    RESIDENT = "resident"


class Perm(StrEnum):
    """Fine-grained permissions checked by services and routes."""

    AREAS_READ = "areas.read"
    AREAS_WRITE = "areas.write"
    PEOPLE_READ = "people.read"
    PEOPLE_WRITE = "people.write"
    HOUSES_READ = "houses.read"
    HOUSES_WRITE = "houses.write"
    ORGS_READ = "orgs.read"
    ORGS_WRITE = "orgs.write"
    VEHICLES_READ = "vehicles.read"
    VEHICLES_WRITE = "vehicles.write"
    RECORDS_MERGE = "records.merge"
    PII_REVEAL = "pii.reveal"
    IMPORT = "registry.import"
    EXPORT = "registry.export"
    AUDIT_READ = "audit.read"
    USERS_MANAGE = "users.manage"
    DEVICES_READ = "devices.read"
    DEVICES_WRITE = "devices.write"
    DEVICES_COMMAND = "devices.command"
    EVENTS_READ = "events.read"


_ALL_REGISTRY = {
    Perm.AREAS_READ,
    Perm.PEOPLE_READ,
    Perm.PEOPLE_WRITE,
    Perm.HOUSES_READ,
    Perm.HOUSES_WRITE,
    Perm.ORGS_READ,
    Perm.ORGS_WRITE,
    Perm.VEHICLES_READ,
    Perm.VEHICLES_WRITE,
}
_DEVICE_KEEPER = {Perm.DEVICES_READ, Perm.DEVICES_WRITE, Perm.DEVICES_COMMAND, Perm.EVENTS_READ}

ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.DISTRICT_ADMIN: frozenset(Perm),
    Role.STREET_STAFF: frozenset(
        _ALL_REGISTRY
        | _DEVICE_KEEPER
        | {Perm.RECORDS_MERGE, Perm.PII_REVEAL, Perm.IMPORT, Perm.EXPORT, Perm.AUDIT_READ}
    ),
    Role.COMMUNITY_WORKER: frozenset(
        _ALL_REGISTRY | _DEVICE_KEEPER | {Perm.RECORDS_MERGE, Perm.PII_REVEAL, Perm.IMPORT, Perm.EXPORT}
    ),
    Role.GRID_WORKER: frozenset(
        {
            Perm.AREAS_READ,
            Perm.PEOPLE_READ,
            Perm.PEOPLE_WRITE,
            Perm.HOUSES_READ,
            Perm.HOUSES_WRITE,
            Perm.ORGS_READ,
            Perm.VEHICLES_READ,
            Perm.PII_REVEAL,
            Perm.EVENTS_READ,
        }
    ),
    Role.PROPERTY_STAFF: frozenset(
        {
            Perm.AREAS_READ,
            Perm.HOUSES_READ,
            Perm.HOUSES_WRITE,
            Perm.VEHICLES_READ,
            Perm.VEHICLES_WRITE,
            Perm.PEOPLE_READ,
            *_DEVICE_KEEPER,
        }
    ),
    # Read-only on people and vehicles, may reveal (audited) and export for casework.
    Role.POLICE_LIAISON: frozenset(
        {
            Perm.AREAS_READ,
            Perm.PEOPLE_READ,
            Perm.HOUSES_READ,
            Perm.VEHICLES_READ,
            Perm.PII_REVEAL,
            Perm.EXPORT,
            Perm.EVENTS_READ,
        }
    ),
    Role.RESIDENT: frozenset(),
}


def role_has(role: str, perm: Perm) -> bool:
    """True if the role grants perm."""
    try:
        return perm in ROLE_PERMS[Role(role)]
    except ValueError:
        return False


ROLE_LABELS: dict[str, str] = {
    Role.DISTRICT_ADMIN: "区级管理员",
    Role.STREET_STAFF: "街道工作人员",
    Role.COMMUNITY_WORKER: "社区工作者",
    Role.GRID_WORKER: "网格员",
    Role.PROPERTY_STAFF: "物业人员",
    Role.POLICE_LIAISON: "公安联络员",
    Role.RESIDENT: "居民",
}
