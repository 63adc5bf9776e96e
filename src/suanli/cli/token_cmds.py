"""API tokens: `suanli token list|create|revoke` (your own) and the same under `suanli admin
token` (any tenant's, the tenant an argument). One factory builds both apps."""

from __future__ import annotations

import typer

from suanli.cli.common import emit, user_errors
from suanli.cli.options import JSON, TOKEN, URL, client
from suanli.tables import tokens_table


def token_app(tenant_arg: bool) -> typer.Typer:
    """The token commands; with `tenant_arg`, each takes the tenant's name first (admin)."""
    group = typer.Typer(help="A tenant's API tokens (admin)." if tenant_arg else
                        "API tokens: list, create, revoke.", no_args_is_help=True)
    who = typer.Argument(..., help="tenant name") if tenant_arg else typer.Option(
        None, hidden=True)

    @group.command("list")
    @user_errors
    def token_list(tenant: str = who, url: str = URL, token: str = TOKEN,
                   as_json: bool = JSON) -> None:
        """Tokens with id, prefix, creation time and revoked; never the secret."""
        with client(url, token) as c:
            ts = c.tokens(tenant)
        emit(ts, as_json, lambda: tokens_table(f"tokens of {tenant}" if tenant else
                                               "your tokens", ts))

    @group.command("create")
    @user_errors
    def token_create(tenant: str = who, url: str = URL, token: str = TOKEN,
                     as_json: bool = JSON) -> None:
        """A new token; its secret is printed this once."""
        with client(url, token) as c:
            t = c.create_token(tenant)
        emit(t, as_json, lambda: f"token {t['id']} for [bold]{t['tenant']}[/] (shown once): "
             f"[bold]{t['token']}[/]", highlight=False)

    @group.command("revoke")
    @user_errors
    def token_revoke(tenant: str = who,
                     token_id: int = typer.Argument(..., help="token id (from `token list`)"),
                     url: str = URL, token: str = TOKEN, as_json: bool = JSON) -> None:
        """Revoke a token: refused by every replica from the next request on."""
        with client(url, token) as c:
            t = c.revoke_token(token_id, tenant)
        emit(t, as_json, lambda: f"token {t['id']} ({t['prefix']}...) of {t['tenant']} revoked")

    return group


app = typer.Typer()
app.add_typer(token_app(tenant_arg=False), name="token")
