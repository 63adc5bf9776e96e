"""Entry point: `suanli`. Each command group is a module-level `typer.Typer()` in its own
module, mounted here the way the service mounts its routers."""

from __future__ import annotations

import typer

from suanli.cli import (
    admin_cmds,
    catalog_cmds,
    jobs_cmds,
    login_cmds,
    market_cmds,
    node_cmds,
    perf_cmds,
    plan_cmds,
    policy_cmds,
    service_cmds,
    simulate_cmds,
    token_cmds,
    voucher_cmds,
)

app = typer.Typer(
    name="suanli",
    help="suanli (算力): place, run and bill AI jobs across a network of compute centers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for _group in (catalog_cmds, perf_cmds, simulate_cmds, policy_cmds, service_cmds, login_cmds,
               jobs_cmds, market_cmds, admin_cmds, token_cmds, node_cmds, voucher_cmds):
    app.add_typer(_group.app)
plan_cmds.register(app)  # (plan_cmds is another helper's file: mounted as it is)


if __name__ == "__main__":
    app()
