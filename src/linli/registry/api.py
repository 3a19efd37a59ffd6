"""Registry JSON API: thin routes; the services hold the rules and the session holds the scope."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from linli.core.auth.roles import Perm
from linli.core.errors import Invalid, TooLarge
from linli.core.pagination import Limit, Offset
from linli.registry import exports, history, importers, organisations, people, places, search, vehicles
from linli.registry.schemas import (
    BuildingIn,
    BuildingOut,
    ChangeOut,
    HouseIn,
    HouseOut,
    MergeIn,
    MoveOutIn,
    OrganisationIn,
    OrganisationOut,
    PersonDetail,
    PersonIn,
    PersonOut,
    PersonPatch,
    ResidenceOut,
    RevealIn,
    RevealOut,
    UpsertResult,
    VehicleIn,
    VehicleOut,
    building_out,
    vehicle_out,
)
from linli.web.deps import DB, CurrentPrincipal

router = APIRouter(prefix="/api/v1", tags=["registry"])


@router.get("/people", response_model=list[PersonOut])
def list_people(
    session: DB,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(max_length=64)] = "",
    tag: Annotated[list[str] | None, Query()] = None,
    community: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[PersonOut]:
    """Search people in the caller's areas: name, pinyin initials, ID/phone tail, address, tags."""
    principal.require(Perm.PEOPLE_READ)
    found = search.search(session, text=q, tags=tag, community_code=community, limit=limit, offset=offset)
    return [PersonOut.of(p) for p in found]


@router.post("/people", response_model=UpsertResult, status_code=200)
def upsert_person(body: PersonIn, session: DB, principal: CurrentPrincipal) -> UpsertResult:
    """Register a person, or link the existing record with the same ID number (最多录一次)."""
    house = places.get_house(session, house_id=body.house_id) if body.house_id else None
    if house is not None:
        places.check_same_community(body.community, house.community_code, field="house_id")
    person, outcome = people.upsert(
        session,
        principal,
        body.model_dump(exclude={"community", "house_id", "relation", "move_in"}),
        community_code=body.community,
        house=house,
        relation=body.relation,
        move_in=body.move_in,
        source="api",
    )
    return UpsertResult(id=person.id, outcome=outcome)


@router.get("/people/{person_id}", response_model=PersonDetail)
def get_person(person_id: int, session: DB, principal: CurrentPrincipal) -> PersonDetail:
    """One person with residences, tags and vehicles (masked)."""
    principal.require(Perm.PEOPLE_READ)
    person = people.get_or_raise(session, person_id=person_id)
    base = PersonOut.of(person).model_dump()
    return PersonDetail(
        **base,
        hukou_place=person.hukou_place,
        ethnicity=person.ethnicity,
        notes=person.notes,
        tags=people.current_tags(session, person_id=person.id),
        residences=[ResidenceOut.of(r, h) for r, h in people.residences(session, person_id=person.id)],
        vehicles=[vehicle_out(v) for v in vehicles.of_owner(session, person_id=person.id)],
    )


@router.patch("/people/{person_id}", response_model=PersonOut)
def edit_person(person_id: int, body: PersonPatch, session: DB, principal: CurrentPrincipal) -> PersonOut:
    """Change a person's facts; every change goes into the history."""
    person = people.edit(session, principal, person_id=person_id, data=body.model_dump(exclude_unset=True))
    return PersonOut.of(person)


@router.post("/people/{person_id}/reveal", response_model=RevealOut)
def reveal(person_id: int, body: RevealIn, session: DB, principal: CurrentPrincipal) -> RevealOut:
    """Show one masked field in plain text (pii.reveal; audited with the reason)."""
    value = people.reveal(session, principal, person_id=person_id, field=body.field, reason=body.reason)
    return RevealOut(field=body.field, value=value)


@router.get("/people/{person_id}/history", response_model=list[ChangeOut])
def person_history(person_id: int, session: DB, principal: CurrentPrincipal) -> list[ChangeOut]:
    """Who changed what about this person, newest first."""
    principal.require(Perm.PEOPLE_READ)
    people.get_or_raise(session, person_id=person_id)
    rows = history.get_all(session, entity="person", entity_id=person_id)
    return [ChangeOut.model_validate(r) for r in rows]


@router.post("/people/merge", response_model=PersonOut)
def merge_people(body: MergeIn, session: DB, principal: CurrentPrincipal) -> PersonOut:
    """Fold a duplicate record into the one kept; links and history are kept."""
    keep = people.merge(session, principal, keep_id=body.keep_id, drop_id=body.drop_id, reason=body.reason)
    return PersonOut.of(keep)


@router.post("/residences/{residence_id}/end", response_model=ResidenceOut)
def end_residence(
    residence_id: int, body: MoveOutIn, session: DB, principal: CurrentPrincipal
) -> ResidenceOut:
    """Record a move-out."""
    residence = people.end_residence(session, principal, residence_id=residence_id, move_out=body.move_out)
    house = places.get_house(session, house_id=residence.house_id)
    return ResidenceOut.of(residence, house)


@router.get("/buildings", response_model=list[BuildingOut])
def list_buildings(
    session: DB, principal: CurrentPrincipal, community: str | None = None
) -> list[BuildingOut]:
    """Buildings in the caller's areas."""
    principal.require(Perm.HOUSES_READ)
    return [building_out(b) for b in places.list_buildings(session, community_code=community)]


@router.post("/buildings", response_model=UpsertResult)
def upsert_building(body: BuildingIn, session: DB, principal: CurrentPrincipal) -> UpsertResult:
    """Register a building (one per community + number)."""
    building, outcome = places.upsert_building(
        session,
        principal,
        community_code=body.community,
        number=body.number,
        floors=body.floors,
        units=body.units,
    )
    return UpsertResult(id=building.id, outcome=outcome)


@router.get("/houses", response_model=list[HouseOut])
def list_houses(
    session: DB,
    principal: CurrentPrincipal,
    building_id: int | None = None,
    community: str | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[HouseOut]:
    """Houses in the caller's areas, in address order."""
    principal.require(Perm.HOUSES_READ)
    rows = places.list_houses(
        session, building_id=building_id, community_code=community, limit=limit, offset=offset
    )
    return [HouseOut.model_validate(h) for h in rows]


@router.post("/houses", response_model=UpsertResult)
def upsert_house(body: HouseIn, session: DB, principal: CurrentPrincipal) -> UpsertResult:
    """Register a house (one per address code) or update its facts."""
    building = places.get_building(session, building_id=body.building_id)
    places.check_same_community(body.community, building.community_code, field="building_id")
    house, outcome = places.upsert_house(
        session,
        principal,
        building=building,
        unit=body.unit,
        room=body.room,
        facts=body.model_dump(include={"area_m2", "use", "ownership", "occupancy"}),
        source="api",
    )
    return UpsertResult(id=house.id, outcome=outcome)


@router.get("/houses/{house_id}", response_model=HouseOut)
def get_house(house_id: int, session: DB, principal: CurrentPrincipal) -> HouseOut:
    """One house."""
    principal.require(Perm.HOUSES_READ)
    return HouseOut.model_validate(places.get_house(session, house_id=house_id))


@router.get("/organisations", response_model=list[OrganisationOut])
def list_organisations(
    session: DB,
    principal: CurrentPrincipal,
    community: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[OrganisationOut]:
    """Organisations in the caller's areas."""
    principal.require(Perm.ORGS_READ)
    rows = organisations.get_all(session, community_code=community, limit=limit, offset=offset)
    return [OrganisationOut.of(o) for o in rows]


@router.post("/organisations", response_model=UpsertResult)
def upsert_organisation(body: OrganisationIn, session: DB, principal: CurrentPrincipal) -> UpsertResult:
    """Register an organisation (one per USCC) or update it; with house_id it occupies that address."""
    house = places.get_house(session, house_id=body.house_id) if body.house_id else None
    org, outcome = organisations.upsert(
        session,
        principal,
        body.model_dump(exclude={"community", "house_id"}),
        community_code=body.community,
        house=house,
        source="api",
    )
    return UpsertResult(id=org.id, outcome=outcome)


@router.get("/organisations/{org_id}", response_model=OrganisationOut)
def get_organisation(org_id: int, session: DB, principal: CurrentPrincipal) -> OrganisationOut:
    """One organisation."""
    principal.require(Perm.ORGS_READ)
    return OrganisationOut.of(organisations.get_or_raise(session, org_id=org_id))


@router.get("/vehicles", response_model=list[VehicleOut])
def list_vehicles(
    session: DB,
    principal: CurrentPrincipal,
    community: str | None = None,
    plate: Annotated[str | None, Query(max_length=16)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[VehicleOut]:
    """Vehicles in the caller's areas, optionally by plate prefix."""
    principal.require(Perm.VEHICLES_READ)
    rows = vehicles.get_all(session, community_code=community, plate_prefix=plate, limit=limit, offset=offset)
    return [vehicle_out(v) for v in rows]


@router.post("/vehicles", response_model=UpsertResult)
def upsert_vehicle(body: VehicleIn, session: DB, principal: CurrentPrincipal) -> UpsertResult:
    """Register a vehicle (one per plate) or update it; the owner must be in the caller's areas."""
    owner = people.get_or_raise(session, person_id=body.owner_person_id) if body.owner_person_id else None
    vehicle, outcome = vehicles.upsert(
        session,
        principal,
        body.model_dump(exclude={"community", "owner_person_id"}),
        community_code=body.community,
        owner=owner,
        source="api",
    )
    return UpsertResult(id=vehicle.id, outcome=outcome)


@router.get("/vehicles/{vehicle_id}", response_model=VehicleOut)
def get_vehicle(vehicle_id: int, session: DB, principal: CurrentPrincipal) -> VehicleOut:
    """One vehicle."""
    principal.require(Perm.VEHICLES_READ)
    return vehicle_out(vehicles.get_or_raise(session, vehicle_id=vehicle_id))


@router.post("/import/registry")
async def import_registry(
    request: Request,
    session: DB,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description=".xlsx or .csv")],
    community: Annotated[str, Form(max_length=32)],
    entity: Annotated[str, Form()] = "auto",
    dry_run: Annotated[bool, Form()] = False,
) -> dict[str, object]:
    """Import a sheet: {"created", "updated", "unchanged", "rejected": [{"row", "field", "reason"}]}."""
    data = await read_upload(request, file)
    name = file.filename or "upload"

    def run() -> dict[str, object]:
        kind = importers.detect_entity(data, name) if entity == "auto" else entity
        table = importers.read(data, name, entity=kind, max_bytes=len(data) + 1)
        report = importers.import_table(
            session, principal, table, entity=kind, community_code=community, filename=name, dry_run=dry_run
        )
        return report.summary()

    return await run_in_threadpool(run)


async def read_upload(request: Request, file: UploadFile) -> bytes:
    """The uploaded bytes, refused (413) past the configured size before and after reading."""
    limit = request.app.state.settings.max_upload_mb * 1024 * 1024
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024 or (file.size is not None and file.size > limit):
        raise TooLarge(f"文件过大：上限 {request.app.state.settings.max_upload_mb} MB", field="file")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"文件过大：上限 {request.app.state.settings.max_upload_mb} MB", field="file")
    if not data:
        raise Invalid("文件为空", field="file")
    return data


@router.get("/import/templates/{entity}.xlsx")
def import_template(entity: str, principal: CurrentPrincipal) -> Response:
    """An empty .xlsx template with the expected Chinese headers."""
    principal.require(Perm.IMPORT)
    return xlsx_response(importers.template(entity), f"{entity}-template.xlsx")


@router.get("/export/people.xlsx")
def export_people(
    session: DB,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(max_length=64)] = "",
    tag: Annotated[list[str] | None, Query()] = None,
    community: str | None = None,
) -> Response:
    """People matching a search as .xlsx (masked; formula-looking cells neutralised; audited)."""
    data, _ = exports.people_xlsx(session, principal, text=q, community_code=community, tags=tag)
    return xlsx_response(data, "people.xlsx")


@router.get("/export/{entity}.xlsx")
def export_list(
    entity: str,
    session: DB,
    principal: CurrentPrincipal,
    community: str | None = None,
    plate: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """Houses, organisations or vehicles in the caller's areas as .xlsx (audited)."""
    if entity == "houses":
        data, _ = exports.houses_xlsx(session, principal, community_code=community)
    elif entity == "organisations":
        data, _ = exports.organisations_xlsx(session, principal, community_code=community)
    elif entity == "vehicles":
        data, _ = exports.vehicles_xlsx(session, principal, community_code=community, plate_prefix=plate)
    else:
        raise Invalid(f"未知的导出类型：{entity}", field="entity")
    return xlsx_response(data, f"{entity}.xlsx")


def xlsx_response(data: bytes, filename: str) -> Response:
    """A download of .xlsx bytes."""
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
