"""create_app(settings) → the ASGI app: every domain's routers, pages, static assets and error handling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware

from linli import __version__, gc_tuning
from linli.core import media, pii
from linli.core.bus import make_bus
from linli.core.errors import LinliError, Unauthorized
from linli.db import make_engine, make_session_factory
from linli.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "web" / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for settings (the environment's when None)."""
    settings = settings or get_settings()
    configure_process(settings)
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        from linli.migrate import upgrade

        upgrade(engine)
    app = FastAPI(
        title="Linli 邻里",
        version=__version__,
        docs_url="/docs",
        openapi_url="/openapi.json",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.bus = make_bus(settings)
    app.state.mqtt_runner = None  # set by the lifespan when it runs the MQTT ingest
    app.state.scheduler = None  # set by the lifespan when it runs the scheduled jobs
    app.state.ingest_pool = None  # set by the lifespan with LINLI_INGEST_PROCESSES
    # With LINLI_INGEST_PROCESSES, set by the lifespan: publishes what the ingest processes committed
    # (core/outbox.Deliverer) after their answers, several requests' batches in one delivery.
    app.state.deliverer = None
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="linli_session",
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    _mount_routes(app)
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def configure_process(settings: Settings) -> None:
    """What a process serving requests sets up before its first one: the personal-data keys, the media
    store and the vendor adapters (the app's process, and each ingest process)."""
    pii.configure(aes_key=settings.pii_key_bytes(), lookup_key=settings.lookup_key_bytes())
    media.configure(root=settings.media_dir, max_bytes=settings.media_max_bytes)
    from linli.devices import adapters

    adapters.load()  # a broken or duplicate vendor adapter stops start-up here, loudly


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the MQTT ingest and the jobs when configured; at the end stop them and close the bus."""
    # What start-up built lives as long as the process: frozen, the collector's full passes skip it (each
    # stalled requests and ingest ~100 ms); and the collector runs less often (see gc_tuning).
    gc_tuning.settle()
    stops = _start_background(app)
    try:
        yield
    finally:
        for stop in reversed(stops):
            stop()
        app.state.mqtt_runner = app.state.scheduler = app.state.ingest_pool = app.state.deliverer = None
        app.state.bus.close()
        app.state.bus = make_bus(app.state.settings)  # an app may be started again (the tests do)


def _start_background(app: FastAPI) -> list[Callable[[], None]]:
    settings: Settings = app.state.settings
    stops: list[Callable[[], None]] = []
    if settings.ingest_processes:
        from linli.devices.ingest_pool import IngestPool

        pool = IngestPool(settings)
        pool.start()
        app.state.ingest_pool = pool
        stops.append(pool.close)
    if settings.mqtt_url:
        from linli.devices.mqtt import Publisher
        from linli.devices.mqtt_ingest import CommandRelay, Runner

        if settings.mqtt_ingest:
            runner = Runner(
                settings.mqtt_url,
                session_factory=app.state.session_factory,
                bus=app.state.bus,
                client_id=settings.mqtt_client_id,
                max_payload_bytes=settings.mqtt_max_bytes,
                share_group=settings.mqtt_share_group,
            )
            runner.start()
            app.state.bus = runner.bus  # commands written by requests leave on the runner's connection
            app.state.mqtt_runner = runner
            stops.append(runner.stop)
        else:
            publisher = Publisher(settings.mqtt_url)
            publisher.start()
            app.state.bus = CommandRelay(app.state.bus, publisher.publish)
            stops.append(publisher.stop)
    if settings.jobs_enabled:
        from linli.jobs import Jobs, build_scheduler

        scheduler = build_scheduler(
            Jobs(session_factory=app.state.session_factory, bus=app.state.bus, settings=settings)
        )
        scheduler.start()
        app.state.scheduler = scheduler
        stops.append(lambda: scheduler.shutdown(wait=False))
    if settings.ingest_processes:  # last: it publishes on the bus as the MQTT ingest left it, stops first
        from linli.core.outbox import Deliverer

        deliverer = Deliverer(
            app.state.session_factory, app.state.bus, gather=settings.ingest_gather_ms / 1000
        )
        app.state.deliverer = deliverer
        stops.append(deliverer.close)
    return stops


def _mount_routes(app: FastAPI) -> None:
    from linli.accounts.api import router as accounts_api
    from linli.accounts.pages import router as accounts_pages
    from linli.areas.api import router as areas_api
    from linli.areas.pages import router as areas_pages
    from linli.devices.api import router as devices_api
    from linli.devices.pages import router as devices_pages
    from linli.registry.api import router as registry_api
    from linli.registry.pages import router as registry_pages
    from linli.vision.api import router as vision_api
    from linli.vision.pages import router as vision_pages
    from linli.web.media import router as web_media
    from linli.web.pages import router as web_pages

    # areas_pages before registry_pages: /areas/tree must not be taken for the area page /areas/{code};
    # vision_pages before devices_pages: /devices/vision is not the device page /devices/{id}.
    pages = (web_pages, areas_pages, registry_pages, accounts_pages, vision_pages, devices_pages)
    for router in (accounts_api, areas_api, registry_api, devices_api, vision_api, web_media, *pages):
        app.include_router(router)

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> JSONResponse:
        """Liveness and database status."""
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return JSONResponse({"status": "ok", "database": "ok", "version": __version__})
        except Exception as exc:  # the probe must answer, whatever the database does
            return JSONResponse(
                {"status": "degraded", "database": f"error: {type(exc).__name__}"}, status_code=503
            )


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LinliError)
    def linli_error(request: Request, exc: LinliError) -> Response:
        if isinstance(exc, Unauthorized) and _wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if _wants_html(request):
            from linli.web.render import error_page

            return error_page(request, exc)
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")),
                "message": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": ""}
        body = {
            "code": "invalid",
            "message": f"输入不合法：{first['field']} {first['message']}".strip(),
            "field": first["field"],
            "errors": errors,
        }
        return JSONResponse({"error": body}, status_code=422)
