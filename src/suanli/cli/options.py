"""Options every client command shares, and the client they build (profile, env, flags)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from suanli.service.client import Client

JSON = typer.Option(False, "--json", help="print JSON instead of tables")
URL = typer.Option(None, "--url", help="service URL (default: $SUANLI_URL, then the profile)")
TOKEN = typer.Option(None, "--token", help="API token (default: $SUANLI_TOKEN, then the profile)")


def client(url: str | None, token: str | None) -> Client:
    from suanli.service.client import Client

    return Client(url, token)
