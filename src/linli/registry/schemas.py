"""Registry API shapes: inputs are loose (validated by the services), outputs are masked by default."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from linli.core import pii
from linli.registry.models import Building, House, Organisation, Person, Residence, Vehicle


class PersonIn(BaseModel):
    """A person to register (or to link, if the ID number exists)."""

    name: str = Field(max_length=64)
    id_type: str = "resident_id"
    id_number: str = Field(max_length=40)
    birth_date: date | None = None
    sex: str | None = None
    phone: str | None = Field(default=None, max_length=40)
    hukou_place: str | None = Field(default=None, max_length=128)
    ethnicity: str | None = Field(default=None, max_length=16)
    notes: str | None = Field(default=None, max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=20)
    community: str | None = Field(default=None, description="home community code when no house is given")
    house_id: int | None = None
    relation: str | None = None
    move_in: date | None = None


class PersonPatch(BaseModel):
    """Editable facts of a registered person (the ID number is fixed)."""

    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=40)
    hukou_place: str | None = Field(default=None, max_length=128)
    ethnicity: str | None = Field(default=None, max_length=16)
    notes: str | None = Field(default=None, max_length=500)
    tags: list[str] | None = Field(default=None, max_length=20)


class PersonOut(BaseModel):
    """A person as lists show them: ID number and phone masked."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    id_type: str
    id_number: str
    birth_date: date | None
    sex: str | None
    phone: str
    area_code: str
    merged_into_id: int | None = None

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        """The masked view of a person."""
        return cls(
            id=person.id,
            name=person.name,
            id_type=person.id_type,
            id_number=pii.mask_id_number(person.id_number),
            birth_date=person.birth_date,
            sex=person.sex,
            phone=pii.mask_phone(person.phone),
            area_code=person.area_code,
            merged_into_id=person.merged_into_id,
        )


class ResidenceOut(BaseModel):
    """One period of a person living in a house."""

    id: int
    house_id: int
    address: str
    relation: str
    move_in: date | None
    move_out: date | None

    @classmethod
    def of(cls, residence: Residence, house: House) -> ResidenceOut:
        """A residence with its house's address."""
        return cls(
            id=residence.id,
            house_id=house.id,
            address=house.full_address,
            relation=residence.relation,
            move_in=residence.move_in,
            move_out=residence.move_out,
        )


class VehicleOut(BaseModel):
    """A vehicle; the owner is a link, not a copy."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    plate: str
    plate_kind: str
    vehicle_type: str
    colour: str
    owner_person_id: int | None
    owner_org_id: int | None
    parking_space: str
    area_code: str


class PersonDetail(PersonOut):
    """A person with where they live, their tags and vehicles."""

    hukou_place: str = ""
    ethnicity: str = ""
    notes: str = ""
    tags: list[str] = Field(default_factory=list)
    residences: list[ResidenceOut] = Field(default_factory=list)
    vehicles: list[VehicleOut] = Field(default_factory=list)


class UpsertResult(BaseModel):
    """What a create-or-link call did."""

    id: int
    outcome: str


class RevealIn(BaseModel):
    """A request to see one masked field in plain text, with the reason (audited)."""

    field: str
    reason: str = Field(min_length=2, max_length=255)


class RevealOut(BaseModel):
    """The plain value of a masked field."""

    field: str
    value: str


class MergeIn(BaseModel):
    """Two records of one person: keep one, fold the other into it."""

    keep_id: int
    drop_id: int
    reason: str = Field(min_length=2, max_length=255)


class MoveOutIn(BaseModel):
    """Ending a residence."""

    move_out: date


class ChangeOut(BaseModel):
    """One history entry."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    changes: dict[str, object]
    source: str


class BuildingIn(BaseModel):
    """A building of a community."""

    community: str
    number: str = Field(max_length=16)
    floors: int | None = Field(default=None, ge=1, le=200)
    units: int | None = Field(default=None, ge=1, le=50)


class BuildingOut(BaseModel):
    """A building."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    community_code: str
    number: str
    name: str
    address_code: str
    full_address: str
    floors: int | None
    units: int | None
    lat: float | None
    lon: float | None


class HouseIn(BaseModel):
    """A house at (building, unit, room) with its facts."""

    community: str | None = Field(default=None, description="checked against the building's community")
    building_id: int
    unit: str | None = Field(default=None, max_length=8)
    room: str = Field(max_length=16)
    area_m2: float | None = None
    use: str | None = None
    ownership: str | None = None
    occupancy: str | None = None


class HouseOut(BaseModel):
    """A house."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    building_id: int
    community_code: str
    unit: str
    floor: int
    room: str
    address_code: str
    full_address: str
    area_m2: float | None
    use: str
    ownership: str
    occupancy: str


class OrganisationIn(BaseModel):
    """An organisation of a community."""

    community: str
    name: str = Field(max_length=128)
    uscc: str = Field(max_length=40)
    org_type: str | None = None
    address: str | None = Field(default=None, max_length=200)
    legal_rep: str | None = Field(default=None, max_length=64)
    contact_name: str | None = Field(default=None, max_length=64)
    contact_phone: str | None = Field(default=None, max_length=40)
    employees: int | None = Field(default=None, ge=0)
    house_id: int | None = Field(default=None, description="the standard address it occupies")


class OrganisationOut(BaseModel):
    """An organisation; the contact phone masked."""

    id: int
    name: str
    uscc: str
    org_type: str
    address: str
    legal_rep: str
    contact_name: str
    contact_phone: str
    employees: int | None
    area_code: str

    @classmethod
    def of(cls, org: Organisation) -> OrganisationOut:
        """The masked view of an organisation."""
        return cls(
            id=org.id,
            name=org.name,
            uscc=org.uscc,
            org_type=org.org_type,
            address=org.address,
            legal_rep=org.legal_rep,
            contact_name=org.contact_name,
            contact_phone=pii.mask_phone(org.contact_phone),
            employees=org.employees,
            area_code=org.area_code,
        )


class VehicleIn(BaseModel):
    """A vehicle; owner by person id (or by ID number, resolved by the service)."""

    community: str
    plate: str = Field(max_length=20)
    vehicle_type: str | None = None
    colour: str | None = Field(default=None, max_length=16)
    owner_person_id: int | None = None
    parking_space: str | None = Field(default=None, max_length=32)


def building_out(b: Building) -> BuildingOut:
    """Schema of a building."""
    return BuildingOut.model_validate(b)


def vehicle_out(v: Vehicle) -> VehicleOut:
    """Schema of a vehicle."""
    return VehicleOut.model_validate(v)
