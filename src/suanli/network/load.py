"""Loading networks from YAML files or by built-in name, checking chips against the catalog."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from suanli.catalog import Catalog, builtin_catalog
from suanli.errors import SpecError, UnknownNameError, format_validation_error
from suanli.network.schema import Network

_BUILTIN = {"east-west": "east_west.yaml"}


def builtin_network_names() -> list[str]:
    return list(_BUILTIN)


def parse_network(raw: object, source: str, catalog: Catalog | None = None) -> Network:
    try:
        net = Network.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None
    catalog = catalog or builtin_catalog()
    centers = []
    for i, center in enumerate(net.centers):
        pools = []
        for j, pool in enumerate(center.pools):
            acc = catalog.get(pool.accelerator, field=f"centers.{i}.pools.{j}.accelerator")
            pools.append(
                pool.model_copy(
                    update={
                        "accelerator": acc.id,
                        "chips_per_node": pool.chips_per_node or acc.chips_per_node,
                    }
                )
            )
        centers.append(center.model_copy(update={"pools": tuple(pools)}))
    # Canonical accelerator ids and chips per node let every consumer skip the catalog lookup.
    return net.model_copy(update={"centers": tuple(centers)})


def load_network(name_or_path: str | Path = "east-west", catalog: Catalog | None = None) -> Network:
    """A built-in network by name, or a YAML file."""
    key = str(name_or_path)
    if key in _BUILTIN:
        text = resources.files("suanli.data").joinpath(_BUILTIN[key]).read_text("utf-8")
        source = key
    else:
        p = Path(key)
        if not p.exists():
            if p.suffix in (".yaml", ".yml") or "/" in key:
                raise SpecError(f"network file not found: {p}", field="network", value=key)
            raise UnknownNameError("network", key, builtin_network_names(), field="network")
        try:
            text = p.read_text("utf-8")
        except OSError as exc:
            raise SpecError(
                f"cannot read network file {p}: {exc.strerror}", field="network"
            ) from None
        source = str(p)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}", field="<file>") from None
    return parse_network(raw, source, catalog)
