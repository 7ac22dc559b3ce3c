"""The hub's Flask application: ``create_app(config=None)`` wires the store, the protocol engine and
every resource module (each owns its routes through ``init_app``)."""

from __future__ import annotations

import importlib
import os
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect

from sync_protocol import wire
from sync_protocol.hub import HubEngine
from sync_protocol.merge import Validator

from .store import SqlHubStore

DEFAULT_DB_URL = "sqlite:///hub.db"


@dataclass
class Hub:
    store: SqlHubStore
    engine: HubEngine


def default_validator() -> Validator | None:
    """The shared field validation (``sync_protocol.validation.validate_change``, through the fast verdict
    of ``sync_protocol.validation_fast``) when installed."""
    try:
        module = importlib.import_module("sync_protocol.validation_fast")
    except ImportError:
        return None
    validator: Validator | None = getattr(module, "validate_change", None)
    return validator


def hub() -> Hub:
    found: Hub = current_app.extensions["central_hub"]
    return found


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        HUB_DB_URL=os.environ.get("HUB_DB_URL", DEFAULT_DB_URL),
        SECRET_KEY=None,
        # A little above the largest envelope, so an oversized push is refused by its Content-Length
        # before the body is read; the sync API answers it with its own JSON error.
        MAX_CONTENT_LENGTH=wire.MAX_ENVELOPE_BYTES + 64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        HUB_PULL_MAX_AGE_S=None,
    )
    app.config.update(config or {})
    store: SqlHubStore = app.config.get("HUB_STORE") or SqlHubStore(app.config["HUB_DB_URL"])
    store.check_schema()
    if not app.config["SECRET_KEY"]:
        secret = store.get_setting("secret_key")
        if secret is None:
            secret = secrets.token_hex(32)
            store.set_setting("secret_key", secret)
        app.config["SECRET_KEY"] = secret
    validator = app.config["HUB_VALIDATOR"] if "HUB_VALIDATOR" in app.config else default_validator()
    app.extensions["central_hub"] = Hub(store, HubEngine(store, validator=validator))
    csrf = CSRFProtect(app)

    from . import access, checkpoint, i18n, nid_dashboard, openapi, staff_api, sync_api, web
    from .nid import service as nid_service

    checkpoint.init_app(app, store)
    nid_service.init_app(app, store, app.extensions["central_hub"].engine)
    from .registry import service as registry_service

    registry_service.init_app(app, store, app.extensions["central_hub"].engine)

    i18n.init_app(app)
    access.init_app(app)
    sync_api.init_app(app, csrf)
    staff_api.init_app(app, csrf)
    openapi.init_app(app)
    web.init_app(app)
    nid_dashboard.init_app(app)
    from .registry import review as registry_review

    registry_review.init_app(app, csrf)
    return app
