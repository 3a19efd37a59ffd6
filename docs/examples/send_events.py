"""Send a batch of events to a Linli hub, signed with the device's secret (Python stdlib + httpx).

    python send_events.py --url http://127.0.0.1:8000 --serial DS-TCG227-TF-S01 --secret '...' events.json
    python send_events.py ... --picture plate.jpg:plate events.json

events.json holds one envelope or a list of them (see docs/events.md); without a file a heartbeat is sent.
--picture uploads a picture first (POST /api/v1/ingest/media) and adds its ref to every event's media.
The secret is the one shown when the device was registered (or its secret was rotated).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

PATH = "/api/v1/ingest/events"
MEDIA_PATH = "/api/v1/ingest/media"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """X-Linli-Signature: "sha256=" + hex HMAC-SHA256(secret, "{timestamp}." + body)."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def heartbeat(serial: str) -> dict[str, Any]:
    """A device.heartbeat envelope for now."""
    return {
        "id": str(uuid.uuid4()),
        "device": serial,
        "type": "device.heartbeat",
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {"status": "ok"},
    }


def _signed_headers(serial: str, secret: str, body: bytes, content_type: str) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": content_type,
        "X-Linli-Device": serial,
        "X-Linli-Timestamp": str(timestamp),
        "X-Linli-Signature": signature(secret, timestamp, body),
    }


def _post(client: httpx.Client | None, timeout: float, url: str, **kwargs: Any) -> dict[str, Any]:
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        response = http.post(url, **kwargs)
        response.raise_for_status()
        return dict(response.json())
    finally:
        if own:
            http.close()


def upload_media(
    base_url: str,
    serial: str,
    secret: str,
    data: bytes,
    *,
    content_type: str = "image/jpeg",
    filename: str = "",
    client: httpx.Client | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Upload a picture or clip, signed; returns {"ref": "sha256:…", "content_type", "size"}.

    Put the ref in an event's media: {"kind": "image", "ref": ref, "content_type": ..., "label": "plate"}.
    Raises httpx.HTTPStatusError on 4xx/5xx (422: not an allowed picture; 413: too large).
    """
    headers = _signed_headers(serial, secret, data, content_type)
    params = {"filename": filename} if filename else {}
    return _post(
        client, timeout, base_url.rstrip("/") + MEDIA_PATH, content=data, headers=headers, params=params
    )


def send(
    base_url: str,
    serial: str,
    secret: str,
    events: list[dict[str, Any]],
    *,
    client: httpx.Client | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """POST events as one signed batch; returns the hub's answer {"stored", "duplicates", "rejected"}.

    Raises httpx.HTTPStatusError on 4xx/5xx (401: wrong secret or clock; 413: batch too large).
    Sending the same batch again is safe: the hub stores each (device, id) once.
    """
    body = json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = _signed_headers(serial, secret, body, "application/json")
    return _post(client, timeout, base_url.rstrip("/") + PATH, content=body, headers=headers)


def main(argv: list[str] | None = None) -> int:
    """Command line: send the events of a JSON file (or a heartbeat) and print the answer."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--serial", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--picture", help="PATH[:LABEL] of a JPEG to upload and attach to every event")
    parser.add_argument("file", nargs="?", type=Path)
    args = parser.parse_args(argv)
    if args.file:
        loaded = json.loads(args.file.read_text(encoding="utf-8"))
        events = loaded if isinstance(loaded, list) else [loaded]
    else:
        events = [heartbeat(args.serial)]
    if args.picture:
        path, _, label = args.picture.partition(":")
        data = Path(path).read_bytes()
        stored = upload_media(args.url, args.serial, args.secret, data, filename=Path(path).name)
        ref = {"kind": "image", "ref": stored["ref"], "content_type": stored["content_type"], "label": label}
        for event in events:
            event.setdefault("media", []).append(ref)
    answer = send(args.url, args.serial, args.secret, events)
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 1 if answer.get("rejected") else 0


if __name__ == "__main__":
    sys.exit(main())
