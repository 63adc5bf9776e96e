"""`suanli node join --center ID`: attach a machine to a center's pools on a Ray cluster.

A suanli job is a Ray task that asks for its center's marker resources (`center:<id>`,
`accelerator_type:<chip>`), so a machine serves a center when its Ray node carries them; this
command starts (or, with --print, prints) the `ray start` line that does so."""

from __future__ import annotations

import json
import shlex
import subprocess

import typer

from suanli.cli.common import console, print_json, user_errors
from suanli.errors import UnknownNameError

node_app = typer.Typer(help="Machines of a Ray cluster and the centers they serve.",
                       no_args_is_help=True)
app = typer.Typer()
app.add_typer(node_app, name="node")


def join_command(network: str, center: str, address: str) -> list[str]:
    """The `ray start` argv that makes this machine a node of `center`."""
    from suanli.backends.ray_backend import node_resources
    from suanli.network import load_network

    resources = node_resources(load_network(network))
    if center not in resources:
        raise UnknownNameError("center", center, sorted(resources), field="center")
    return ["ray", "start", f"--address={address}",
            f"--resources={json.dumps(resources[center], sort_keys=True)}"]


@node_app.command("join")
@user_errors
def node_join(center: str = typer.Option(..., "--center", help="center id this machine serves"),
              address: str = typer.Option(..., "--address", help="Ray head, HOST:PORT"),
              network: str = typer.Option("east-west", help="network name or YAML"),
              print_only: bool = typer.Option(False, "--print",
                                              help="print the `ray start` line, run nothing"),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Join this machine to the Ray cluster as a node of CENTER (its pools' resources)."""
    argv = join_command(network, center, address)
    line = shlex.join(argv)
    if print_only:
        if as_json:
            print_json({"center": center, "command": argv})
        else:
            console.print(line, highlight=False, soft_wrap=True)
        return
    out = subprocess.run(argv, capture_output=True, text=True)
    if as_json:
        print_json({"center": center, "command": argv, "returncode": out.returncode})
    else:
        console.print(out.stdout.strip() or out.stderr.strip(), highlight=False)
    if out.returncode != 0:
        raise typer.Exit(code=out.returncode)
