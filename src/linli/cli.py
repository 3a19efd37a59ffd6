"""The `linli` command: serve, db, demo, simulate, users, import, export; the workers are in workers.py."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from linli.core import media, pii
from linli.core.auth import service as accounts
from linli.core.auth.service import Principal
from linli.core.errors import LinliError
from linli.db import Scope, analyze, make_engine, make_session_factory, unit_of_work, writing
from linli.settings import Settings, get_settings
from linli.vision.cli import vision_app
from linli.workers import ingest_app, jobs_app

app = typer.Typer(help="Linli 邻里 smart-community platform", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
users_app = typer.Typer(help="Accounts", no_args_is_help=True)
import_app = typer.Typer(help="Import spreadsheets (.xlsx / .csv)", no_args_is_help=True)
export_app = typer.Typer(help="Export to .xlsx", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(ingest_app, name="ingest")
app.add_typer(jobs_app, name="jobs")
app.add_typer(vision_app, name="vision")


def _factory() -> tuple[Engine, sessionmaker[Session]]:
    settings = get_settings()
    pii.configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    media.configure(root=settings.media_dir, max_bytes=settings.media_max_bytes)  # demo stills, evidence
    engine = make_engine(settings.database_url)
    return engine, make_session_factory(engine)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"错误 / error: {message}", err=True)
    return typer.Exit(code)


def serve_settings(settings: Settings) -> Settings:
    """The server's settings: scheduled jobs on unless LINLI_JOBS_ENABLED says otherwise."""
    if "jobs_enabled" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"jobs_enabled": True})


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port (default LINLI_PORT or 8000)")] = None,
) -> None:
    """Serve the console and API (migrations are applied on start)."""
    import uvicorn

    from linli.app import create_app

    settings = serve_settings(get_settings())
    uvicorn.run(
        create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the newest."""
    from linli.migrate import current, upgrade

    engine, _ = _factory()
    upgrade(engine)
    typer.echo(f"database at revision {current(engine)}")


@app.command()
def demo(
    scale: Annotated[
        str, typer.Option(help="small (3 pilot communities in detail) or district (~1M people)")
    ] = "small",
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same district")] = 20211,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="do nothing if the database has data")] = False,
) -> None:
    """Seed the demo district (西咸新区-like: 5 new cities, 142 communities, synthetic residents)."""
    from linli.demo import service as demo_service
    from linli.migrate import upgrade

    if scale not in ("small", "district"):
        raise _fail("--scale must be small or district")
    engine, factory = _factory()
    upgrade(engine)
    started = time.perf_counter()
    with unit_of_work(factory) as session:
        if demo_service.is_seeded(session):
            if if_empty:
                typer.echo("demo: database already has data, left as it is")
                return
            raise _fail("database already has data; use a fresh LINLI_DATABASE_URL")
        counts = demo_service.seed(
            session, scale=scale, seed=seed, progress=lambda m: typer.echo(m, err=True)
        )
    analyze(engine)  # the planner needs fresh statistics to pick the search indexes
    typer.echo(json.dumps({**counts, "seconds": round(time.perf_counter() - started, 1)}, ensure_ascii=False))


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            help="district_admin, street_staff, community_worker, grid_worker, "
            "property_staff, police_liaison, resident"
        ),
    ],
    area: Annotated[list[str], typer.Option(help="area code the user may see (repeatable)")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
) -> None:
    """Create a user bound to one or more areas."""
    if not password_stdin:
        raise _fail("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    _, factory = _factory()
    from linli.areas import service as areas

    try:
        with unit_of_work(factory) as session:
            for code in area:
                areas.get_or_raise(session, code=code, field="area")
            user = accounts.create(
                session, username=name, password=password, role=role, area_codes=list(area)
            )
            typer.echo(json.dumps({"id": user.id, "username": user.username, "role": role, "areas": area}))
    except LinliError as exc:
        raise _fail(f"{exc.field or ''} {exc.message}".strip()) from None


@import_app.command("registry")
def import_registry(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    community: Annotated[str, typer.Option(help="community code the sheet belongs to")],
    entity: Annotated[str, typer.Option(help="people, houses, organisations, vehicles, or auto")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report without writing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON summary")] = False,
    report: Annotated[
        Path | None, typer.Option(help="write the rows with an error column to this .xlsx")
    ] = None,
) -> None:
    """Import a register sheet; prints {"created", "updated", "unchanged", "rejected": [...]}."""
    from linli.registry import importers

    settings = get_settings()
    data = file.read_bytes()
    engine, factory = _factory()
    try:
        kind = importers.detect_entity(data, file.name) if entity == "auto" else entity
        table = importers.read(data, file.name, entity=kind, max_bytes=settings.max_upload_mb * 1024 * 1024)
        session = writing(factory())
        try:
            result = importers.import_table(
                session,
                Principal.system(),
                table,
                entity=kind,
                community_code=community,
                filename=file.name,
                dry_run=dry_run,
            )
            session.commit()  # a dry run has already undone its rows; its audit entry stays
        finally:
            session.close()
        if result.created > 10_000:
            analyze(engine)
    except LinliError as exc:
        raise _fail(f"{exc.field or ''} {exc.message}".strip()) from None
    summary = result.summary()
    if report is not None:
        report.write_bytes(importers.error_report(table, result))
    if not as_json:
        typer.echo(
            f"{file.name}: {kind} created={result.created} updated={result.updated} "
            f"unchanged={result.unchanged} rejected={len(result.rejected)}"
            + (" (dry run)" if dry_run else ""),
            err=True,
        )
    typer.echo(json.dumps(summary, ensure_ascii=False))


@export_app.command("people")
def export_people(
    out: Annotated[Path, typer.Argument(dir_okay=False)],
    q: Annotated[str, typer.Option(help="search text, as in the console")] = "",
    community: Annotated[str | None, typer.Option(help="community or any area code")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="care tag (repeatable)")] = None,
) -> None:
    """Export people matching a search to .xlsx (ID numbers and phones masked)."""
    from linli.registry import exports

    _, factory = _factory()
    with unit_of_work(factory, scope=Scope.everything()) as session:
        data, count = exports.people_xlsx(
            session, Principal.system(), text=q, community_code=community, tags=tag
        )
    out.write_bytes(data)
    typer.echo(json.dumps({"file": str(out), "rows": count}))


@export_app.command("list")
def export_list(
    entity: Annotated[str, typer.Argument(help="houses, organisations, vehicles or devices")],
    out: Annotated[Path, typer.Argument(dir_okay=False)],
    community: Annotated[str | None, typer.Option(help="community code")] = None,
) -> None:
    """Export houses, organisations, vehicles or the device register (设备台账) to .xlsx."""
    from linli.devices import exports as device_exports
    from linli.registry import exports

    def devices_xlsx(session: Any, principal: Principal, *, community_code: str | None) -> tuple[bytes, int]:
        given = {"community": community_code} if community_code else {}
        return device_exports.devices_xlsx(session, principal, query={"area": community_code}, given=given)

    makers = {
        "houses": exports.houses_xlsx,
        "organisations": exports.organisations_xlsx,
        "vehicles": exports.vehicles_xlsx,
        "devices": devices_xlsx,
    }
    if entity not in makers:
        raise _fail("entity must be houses, organisations, vehicles or devices")
    _, factory = _factory()
    with unit_of_work(factory, scope=Scope.everything()) as session:
        data, count = makers[entity](session, Principal.system(), community_code=community)
    out.write_bytes(data)
    typer.echo(json.dumps({"file": str(out), "rows": count}))


@app.command()
def simulate(
    community: Annotated[str, typer.Option(help="community code, e.g. 611102001001 (天府和苑)")],
    via: Annotated[str, typer.Option(help="http (signed batches) or mqtt (QoS 1 publishes)")] = "http",
    rate: Annotated[
        float | None,
        typer.Option(help="mean events per wall-clock second over a simulated day (default: natural volume)"),
    ] = None,
    duration: Annotated[float, typer.Option(help="wall-clock seconds to run")] = 60.0,
    url: Annotated[
        str | None,
        typer.Option(
            help="hub URL (default http://127.0.0.1:8000) or broker (default mqtt://127.0.0.1:1883)"
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="linli (our schema) or hikvision (cameras, gates and access terminals push ISAPI XML to "
            "the hub's /api/v1/ingest/push/hikvision_isapi endpoint, one alert a request; over mqtt the "
            "simulator reads the XML with the same adapter and publishes the envelopes)",
        ),
    ] = "linli",
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same stream")] = 1,
    day_seconds: Annotated[
        float, typer.Option(help="wall-clock seconds one simulated day lasts (86400: real time)")
    ] = 86_400.0,
    create_devices: Annotated[
        bool,
        typer.Option("--create-devices", help="register a realistic device set if the community has none"),
    ] = False,
) -> None:
    """Play a community's devices: access and vehicle peaks, patrols, sensors, alarms, heartbeats, outages.

    Runs next to the database (LINLI_DATABASE_URL, LINLI_SECRET_KEY): it reads the devices' encrypted
    secrets from the register to sign HTTP requests, as the hub does to check them.
    """
    from linli.demo import simulator_send as sim

    options = sim.Options(
        community=community,
        via=via,
        rate=rate,
        duration=duration,
        url=url,
        fmt=fmt,
        seed=seed,
        day_seconds=day_seconds,
        create_devices=create_devices,
    )
    _, factory = _factory()
    try:
        options.check()
        registered = sim.prepare(factory, options, typer.echo)
        tally = sim.run(registered, options, typer.echo)
    except LinliError as exc:
        raise _fail(f"{exc.field or ''} {exc.message}".strip()) from None
    except (OSError, ConnectionError) as exc:
        raise _fail(f"cannot reach {url or via}: {exc}") from None
    if tally.sent and not (tally.stored or tally.duplicates or tally.acknowledged):
        raise _fail(f"nothing was taken: {tally.last_error}", code=1)


if __name__ == "__main__":  # pragma: no cover
    app()
