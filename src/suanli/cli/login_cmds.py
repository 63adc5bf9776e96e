"""`suanli login`: store a profile (service URL + token) so no command needs a pasted token."""

from __future__ import annotations

from pathlib import Path

import typer

from suanli.cli.common import console, print_json, user_errors
from suanli.cli.options import JSON
from suanli.errors import SuanliError
from suanli.service.client import DEFAULT_URL, Client, default_url
from suanli.service.profiles import Profile, load_profile, read_credentials, save_profile

app = typer.Typer()


@app.command("login")
@user_errors
def login(url: str = typer.Argument(None, help=f"service URL (default {DEFAULT_URL})"),
          token: str = typer.Option(None, "--token", help="API token"),
          credentials: Path = typer.Option(
              None, "--credentials",
              help="the admin credentials file `suanli up` wrote (URL and token)"),
          profile: str = typer.Option(None, "--profile",
                                      help="profile name (default: admin or default)"),
          as_json: bool = JSON) -> None:
    """Store a profile (URL + token) and make it current, after checking it.

    With only --profile, switch to that stored profile."""
    if credentials is not None:
        p = read_credentials(credentials)
        p = Profile(name=profile or p.name, url=url or p.url, token=token or p.token)
    elif url is None and token is None and profile:
        p = load_profile(profile)
        assert p is not None
    elif token is None:
        raise SuanliError("give --token, or --credentials FILE (written by `suanli up`)",
                          field="token")
    else:
        p = Profile(name=profile or "default", url=url or default_url(), token=token)
    with Client(p.url, p.token) as c:
        who = c.usage()  # fails here, in one line, for a wrong URL or token
    where = save_profile(p)
    if as_json:
        print_json({"profile": p.name, "url": p.url, "tenant": who["tenant"],
                    "config": str(where)})
    else:
        console.print(f"logged in to {p.url} as tenant [bold]{who['tenant']}[/] "
                      f"(profile {p.name}, stored in {where})")
