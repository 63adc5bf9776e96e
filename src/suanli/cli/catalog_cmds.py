"""`suanli accelerators` and `suanli network show`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from suanli.catalog import load_catalog
from suanli.cli.common import console, print_json, user_errors
from suanli.network import load_network

app = typer.Typer()
network_app = typer.Typer(help="Inspect compute networks.", no_args_is_help=True)
app.add_typer(network_app, name="network")


@app.command("accelerators")
@user_errors
def accelerators(
    catalog: Path | None = typer.Option(None, help="YAML file adding or overriding chips."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the accelerator catalog."""
    cat = load_catalog(catalog)
    if as_json:
        print_json([a.model_dump() for a in cat])
        return
    table = Table(title=f"Accelerators ({len(cat)})")
    for col in ("id", "vendor", "BF16 TF", "FP8 TF", "mem GB", "HBM TB/s", "link GB/s", "topo",
                "TDP W", "export"):
        table.add_column(col, justify="right" if col not in ("id", "vendor", "topo") else "left")
    for a in cat:
        table.add_row(
            a.id, a.vendor, f"{a.bf16_tflops:g}", f"{a.fp8_tflops:g}" if a.fp8_tflops else "-",
            f"{a.memory_gb:g}", f"{a.memory_bw_tbs:g}", f"{a.scaleup_bw_gbs:g}",
            a.scaleup_topology, f"{a.tdp_w:g}", a.export_note[:40] or "-",
        )
    console.print(table)


@network_app.command("show")
@user_errors
def network_show(
    network: str = typer.Argument("east-west", help="Built-in name or YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a network's centers, pools and links."""
    net = load_network(network)
    if as_json:
        print_json(net.model_dump())
        return
    if net.illustrative:
        console.print(
            "[yellow]ILLUSTRATIVE network:[/] structure is real, inventories and prices are not "
            "operator data."
        )
    table = Table(title=f"{net.name}: {len(net.centers)} centers, {len(net.regions)} regions")
    for col in ("center", "region", "CNY/kWh", "PUE", "gCO2/kWh", "pools"):
        table.add_column(col)
    for c in net.centers:
        pools = ", ".join(
            f"{p.accelerator}x{p.chips}@{p.price_per_chip_hour:g}"
            for p in c.pools
        )
        table.add_row(c.id, c.region, f"{c.electricity_price_per_kwh:g}", f"{c.pue:g}",
                      f"{c.carbon_g_per_kwh:g}", pools)
    console.print(table)
    links = Table(title="WAN links")
    for col in ("a", "b", "Gbps", "ms", f"{net.currency}/GB"):
        links.add_column(col)
    for link in net.links:
        links.add_row(link.a, link.b, f"{link.bandwidth_gbps:g}", f"{link.latency_ms:g}",
                      f"{link.price_per_gb:g}")
    console.print(links)
