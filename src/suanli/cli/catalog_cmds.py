"""`suanli accelerators` and `suanli network show`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
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
    wide: bool = typer.Option(False, "--wide", help="every column (topology, export note)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the accelerator catalog."""
    cat = load_catalog(catalog)
    if as_json:
        print_json([a.model_dump() for a in cat])
        return
    table = Table(title=f"Accelerators ({len(cat)})", box=box.SIMPLE_HEAD)
    cols = ["id", "vendor", "BF16", "FP8", "mem", "HBM", "link", "TDP"]
    if wide:
        cols += ["topo", "export"]
    for col in cols:
        table.add_column(col, no_wrap=True,
                         justify="left" if col in ("id", "vendor", "topo", "export") else "right")
    for a in cat:
        row = [a.id, a.vendor[:10], f"{a.bf16_tflops:g}",
               f"{a.fp8_tflops:g}" if a.fp8_tflops else "-", f"{a.memory_gb:g}",
               f"{a.memory_bw_tbs:g}", f"{a.scaleup_bw_gbs:g}", f"{a.tdp_w:g}"]
        table.add_row(*row, *([a.scaleup_topology, a.export_note[:40] or "-"] if wide else []))
    console.print(table)
    console.print("BF16, FP8: dense TFLOPS; mem: GB; HBM: memory TB/s; link: scale-up GB/s "
                  "per chip; TDP: W" + ("" if wide else "; --wide adds topology and export"),
                  highlight=False)


@network_app.command("list")
@user_errors
def network_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The built-in networks (any YAML file in the same shape works too)."""
    from suanli.network.load import builtin_network_names

    rows = []
    for name in builtin_network_names():
        net = load_network(name)
        rows.append({"name": name, "centers": len(net.centers), "regions": len(net.regions),
                     "chips": sum(p.chips for c in net.centers for p in c.pools),
                     "illustrative": net.illustrative})
    if as_json:
        print_json(rows)
        return
    table = Table(title="networks", box=box.SIMPLE_HEAD)
    for col in ("name", "centers", "regions", "chips", "data"):
        table.add_column(col, justify="left" if col in ("name", "data") else "right")
    for r in rows:
        table.add_row(r["name"], str(r["centers"]), str(r["regions"]), f"{r['chips']:,}",
                      "illustrative" if r["illustrative"] else "operator")
    console.print(table)


@network_app.command("show")
@user_errors
def network_show(
    network: str = typer.Argument("east-west", help="Built-in name or YAML file."),
    wide: bool = typer.Option(False, "--wide", help="every column (PUE, carbon)"),
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
    table = Table(title=f"{net.name}: {len(net.centers)} centers, {len(net.regions)} regions",
                  box=box.SIMPLE_HEAD)
    cols = ["center", "region", "pools: chip x count @ price/h", "kWh"]
    if wide:
        cols += ["PUE", "gCO2/kWh"]
    for col in cols:
        table.add_column(col, no_wrap=True)
    for c in net.centers:
        pools = "\n".join(f"{p.accelerator} x{p.chips} @{p.price_per_chip_hour:g}"
                          for p in c.pools)
        row = [c.id, c.region, pools, f"{c.electricity_price_per_kwh:g}"]
        if wide:
            row += [f"{c.pue:g}", f"{c.carbon_g_per_kwh:g}"]
        table.add_row(*row)
    console.print(table)
    console.print(f"prices in {net.currency} per chip-hour; kWh: electricity {net.currency}/kWh"
                  + ("" if wide else "; --wide adds PUE and carbon"), highlight=False)
    links = Table(title="WAN links")
    for col in ("a", "b", "Gbps", "ms", f"{net.currency}/GB"):
        links.add_column(col)
    for link in net.links:
        links.add_row(link.a, link.b, f"{link.bandwidth_gbps:g}", f"{link.latency_ms:g}",
                      f"{link.price_per_gb:g}")
    console.print(links)
