"""One ingest process, one batch at a time: where the device hub's CPU goes, without a server or a broker.

    .venv/bin/python bench/ingest_batch.py                    # SQLite and PostgreSQL, both ways in
    .venv/bin/python bench/ingest_batch.py --batches 80 --skip-postgres
    .venv/bin/python bench/ingest_batch.py --profile mqtt-postgresql   # cProfile of one of the four runs

The same world and events as bench/ingest.py (one community, ~150 devices, 3,000 cars, the simulated day
replayed in time order), handed in-process to the code a server or a worker runs for them:
`receive.handle` for a signed 500-event HTTP request (then the outbox delivery the server does), and
`mqtt_ingest.handle_batch` for 500 MQTT messages of one event each. Printed per batch: wall time, the
CPU time of this process (the rest of the wall time is the database's own work, or waiting for it),
statements sent, and the baseline of the same 500 rows (executemany or COPY into a copy of the table) in
the same terms. On a shared machine whose speed changes from hour to hour, CPU per batch against the
baseline's is the figure to compare across runs; bench/ingest.py measures the sustained rates.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LINLI_SECRET_KEY", "bench-secret-key-0123456789abcdef")

from sqlalchemy import Engine, event  # noqa: E402

from bench import ingest as B  # noqa: E402
from linli.core import outbox  # noqa: E402
from linli.core.bus import InProcessBus  # noqa: E402
from linli.db import make_engine, make_session_factory  # noqa: E402
from linli.demo.simulator_send import signed_headers  # noqa: E402
from linli.devices import mqtt_ingest, receive, signing  # noqa: E402
from linli.devices.mqtt import Message, events_topic  # noqa: E402

BATCH = B.BATCH
Way = tuple[Callable[[int], None], Callable[[int], None]]  # (build batch n, ingest batch n)
WARM = 5  # batches run before the measured ones (caches, statement cache, the store's first pages)


def _http(fleet: B.Fleet, items: list[B.Template], factory: Any, bus: InProcessBus) -> Way:
    serial, secret = fleet.gateway

    def body(n: int) -> bytes:
        events = (B.replayed(items, k, f"h{k}") for k in range(n * BATCH, (n + 1) * BATCH))
        return ("[" + ",".join(events) + "]").encode()

    bodies: dict[int, bytes] = {}

    def prepare(n: int) -> None:
        bodies[n] = body(n)

    def run(n: int) -> None:
        data = bodies.pop(n)
        request = signing.Signed.of(signed_headers(serial, secret, data), data, skew_seconds=300)
        handled = receive.handle(factory, request, content_type="application/json")
        if handled.error is not None:
            raise RuntimeError(handled.error)
        if handled.written is not None:
            outbox.deliver_outbox(factory, bus, written=handled.written)

    return prepare, run


def _mqtt(fleet: B.Fleet, items: list[B.Template], factory: Any, bus: InProcessBus) -> Way:
    gateway = fleet.gateway[0]
    topic = events_topic(B.COMMUNITY, gateway)
    batches: dict[int, list[Message]] = {}

    def prepare(n: int) -> None:
        batches[n] = [
            Message(topic, B.COMMUNITY, gateway, B.replayed(items, k, f"m{k}").encode(), k % 65535 + 1, 1)
            for k in range(n * BATCH, (n + 1) * BATCH)
        ]

    def run(n: int) -> None:
        stats = mqtt_ingest.handle_batch(batches.pop(n), session_factory=factory, bus=bus)
        if stats.stored != BATCH:
            raise RuntimeError(f"batch {n}: {stats}")

    return prepare, run


WAYS = {"http": _http, "mqtt": _mqtt}


def measure(engine: Engine, way: str, batches: int, profile: bool) -> dict[str, float]:
    """Seed a fresh world, run WARM + batches batches one after the other, and time the measured ones."""
    fleet = B.seed(engine)
    items = B.templates(fleet)
    factory = make_session_factory(engine)
    prepare, run = WAYS[way](fleet, items, factory, InProcessBus())
    for n in range(WARM + batches):
        prepare(n)
    for n in range(WARM):
        run(n)
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    gc.collect()
    gc.freeze()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(WARM, WARM + batches):
        run(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("linli/", 40)
        if os.environ.get("PROFILE_TOTTIME"):
            pstats.Stats(profiler).sort_stats("tottime").print_stats(60)
    event.remove(engine, "before_cursor_execute", count)
    gc.unfreeze()
    rows, seconds = (B.baseline_postgres if engine.dialect.name == "postgresql" else B.baseline_sqlite)(
        engine
    )
    base_cpu = B.BASELINE_CPU.pop(engine.dialect.name, None)  # SQLite's only: COPY's work is the server's
    return {
        "wall": wall / batches * 1000,
        "cpu": cpu / batches * 1000,
        "statements": statements[0] / batches,
        "base_wall": seconds / rows * BATCH * 1000,
        "base_cpu": base_cpu / rows * BATCH * 1000 if base_cpu is not None else -1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--pg-url", default=os.environ.get("LINLI_BENCH_PG_URL", B.DEFAULT_PG))
    parser.add_argument("--profile", default="", help="way-database, e.g. mqtt-postgresql: print a cProfile")
    args = parser.parse_args()
    print(f"machine: {B.machine_load()}")
    print(f"{BATCH} events per batch, {args.batches} batches measured after {WARM}, one process, one thread")
    print(
        f"{'way':<6} {'database':<11} {'wall ms':>8} {'CPU ms':>7} {'stmts':>6} "
        f"{'baseline wall/CPU ms':>21} {'ratio':>6}"
    )
    databases = ["sqlite"] + ([] if args.skip_postgres else ["postgresql"])
    for database in databases:
        for way in WAYS:
            with tempfile.TemporaryDirectory() as folder:
                engine = (
                    make_engine(f"sqlite:///{folder}/batch.db")
                    if database == "sqlite"
                    else B.postgres_engine(args.pg_url)
                )
                try:
                    got = measure(engine, way, args.batches, args.profile == f"{way}-{database}")
                finally:
                    engine.dispose()
            cpu_base = f"{got['base_cpu']:>5.1f}" if got["base_cpu"] >= 0 else "    -"
            print(
                f"{way:<6} {database:<11} {got['wall']:>8.1f} {got['cpu']:>7.1f} {got['statements']:>6.1f} "
                f"{got['base_wall']:>12.1f} / {cpu_base} {got['base_wall'] / got['wall']:>6.3f}",
                flush=True,
            )
    print("ratio: the baseline's wall time per batch / the ingest's (one process; bench/ingest.py runs two)")


if __name__ == "__main__":
    main()
