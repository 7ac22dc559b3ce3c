"""English and Bangla for the staff pages (Flask-Babel). The chosen language lives in the session;
the first visit follows the browser's Accept-Language."""

from __future__ import annotations

from flask import Flask, redirect, request, session
from flask_babel import Babel, get_locale
from werkzeug.wrappers import Response

LANGUAGES = ("en", "bn")
_BN_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or "en"


def local_digits(value: object) -> str:
    """Bangla digits in the Bangla interface (glossary rule); values stay ASCII everywhere else."""
    text = "" if value is None else str(value)
    return text.translate(_BN_DIGITS) if str(get_locale()) == "bn" else text


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["digits"] = local_digits
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())

    @app.get("/lang/<code>")
    def set_language(code: str) -> Response:
        if code in LANGUAGES:
            session["lang"] = code
        target = request.args.get("next", "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never an open redirect
        return redirect(target)
