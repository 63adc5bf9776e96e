"""`suanli policies list`: the scheduling policies `simulate --policy` and `up --policy` take."""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table

from suanli.cli.common import console, print_json, user_errors

policies_app = typer.Typer(help="Scheduling policies.", no_args_is_help=True)
app = typer.Typer()
app.add_typer(policies_app, name="policies")


def policy_rows() -> list[dict[str, object]]:
    from suanli.policies.registry import get_policy, policy_aliases, policy_names

    aliases: dict[str, list[str]] = {}
    for alias, name in policy_aliases().items():
        aliases.setdefault(name, []).append(alias)
    rows = []
    for name in policy_names():
        doc = (get_policy(name).__doc__ or "").strip().splitlines()
        rows.append({"name": name, "aliases": sorted(aliases.get(name, [])),
                     "summary": doc[0] if doc else ""})
    return rows


def print_policies(as_json: bool) -> None:
    rows = policy_rows()
    if as_json:
        print_json(rows)
        return
    table = Table(title="scheduling policies", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("also called", overflow="fold")
    table.add_column("what it does")
    for r in rows:
        table.add_row(str(r["name"]), "\n".join(r["aliases"]), str(r["summary"]) or "-")
    console.print(table)


@policies_app.command("list")
@user_errors
def policies_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every registered policy, with its first docstring line."""
    print_policies(as_json)
