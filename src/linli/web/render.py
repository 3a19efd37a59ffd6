"""Page rendering: one Jinja2 environment over every domain's templates, with i18n and local time."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader

from linli.core import pii
from linli.core.auth.roles import ROLE_LABELS
from linli.core.errors import LinliError
from linli.core.i18n import pick_lang, translate
from linli.core.timeutil import format_local
from linli.registry import vocab
from linli.web.deps import csrf_token

_ROOT = Path(__file__).parent.parent
_DIRS = [_ROOT / "web" / "templates", *sorted(p for p in _ROOT.glob("*/templates") if p.parent.name != "web")]
templates = Jinja2Templates(directory=[str(d) for d in _DIRS])
templates.env.loader = ChoiceLoader([FileSystemLoader([str(d) for d in _DIRS])])
templates.env.filters["local"] = format_local
templates.env.filters["mask_id"] = pii.mask_id_number
templates.env.filters["mask_phone"] = pii.mask_phone
templates.env.globals["vocab"] = vocab
templates.env.globals["role_label"] = lambda role: ROLE_LABELS.get(role, role)
LANG_COOKIE = "linli_lang"


def lang_of(request: Request) -> str:
    """The page language: the user's switch (cookie), else Chinese."""
    return pick_lang(request.cookies.get(LANG_COOKIE))


def is_htmx(request: Request) -> bool:
    """True for an htmx request, which wants only the partial."""
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page (or its partial for htmx) with the language, the caller and a CSRF token."""
    lang = lang_of(request)

    def t(message: str, **values: object) -> str:
        return translate(message, lang, **values)

    def label(vocab_map: dict[str, tuple[str, str]], code: str | None) -> str:
        return vocab.label(vocab_map, code, lang)

    base = {
        "request": request,
        "lang": lang,
        "t": t,
        "colon": "：" if lang == "zh" else ": ",  # after a label: full-width in Chinese
        "label": label,
        "principal": getattr(request.state, "principal", None),
        "csrf": csrf_token(request),
        "htmx": is_htmx(request),
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)


def error_page(request: Request, exc: LinliError) -> HTMLResponse:
    """A page explaining a business error, in the page language."""
    return render(request, "error.html", status_code=exc.status_code, error=exc)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_download(data: bytes, filename: str, *, fallback: str) -> Response:
    """An .xlsx download whose Chinese file name survives every browser (RFC 6266 filename*)."""
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    return Response(data, media_type=XLSX, headers={"Content-Disposition": disposition})
