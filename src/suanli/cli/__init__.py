"""The `suanli` command line: one module per command group, each a module-level Typer app."""
