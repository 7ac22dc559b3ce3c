"""Flask application factory of the field node: operator UI (``ui``) and JSON API (``api``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_babel import Babel
from flask_wtf import CSRFProtect

from . import api, ui
from .auth import TokenStore
from .i18n import current_lang, digits, label, label_options, select_locale, when
from .node import Node
from .services import Registry

csrf = CSRFProtect()


@dataclass
class NodeState:
    node: Node
    registry: Registry
    tokens: TokenStore = field(default_factory=TokenStore)


def state() -> NodeState:
    st: NodeState = current_app.extensions["field_node"]
    return st


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """``config``: ``DATA_DIR`` (the node's directory) or ``NODE`` (an open ``Node``); anything else is
    ordinary Flask configuration."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.urandom(32),  # per process: sessions end when the database locks again
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        BABEL_DEFAULT_LOCALE="en",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        HUB_TIMEOUT_S=30.0,
    )
    app.config.update(config or {})
    node = app.config.get("NODE") or Node(app.config["DATA_DIR"])
    app.extensions["field_node"] = NodeState(node, Registry(node))
    Babel(app, locale_selector=select_locale)
    csrf.init_app(app)
    app.jinja_env.globals.update(label=label, label_options=label_options, current_lang=current_lang)
    app.jinja_env.filters["digits"] = digits
    app.jinja_env.filters["when"] = when
    api.init_app(app)
    csrf.exempt(api.bp)  # bearer-token API: no cookies, so no cross-site request forgery
    ui.init_app(app)
    return app
