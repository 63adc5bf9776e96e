"""Entry point: `suanli`."""

from __future__ import annotations

import typer

from suanli.cli import catalog_cmds, perf_cmds, plan_cmds, service_cmds, simulate_cmds

app = typer.Typer(
    name="suanli",
    help="suanli (算力): place, run and bill AI jobs across a network of compute centers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for _group in (catalog_cmds, perf_cmds, plan_cmds, simulate_cmds, service_cmds):
    _group.register(app)


if __name__ == "__main__":
    app()
