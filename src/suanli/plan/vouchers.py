"""A tenant's net price: what it pays per chip-hour at each pool once its compute vouchers
have paid their share there, so that the broker ranks placements by the tenant's own cost and
a voucher can change the best placement.

The planner calls `net_prices` on its candidate pools' prices (spot or on demand). A voucher
counts at a pool when it lists the pool's center or the center's region (or lists neither);
the shares of the vouchers that count there add up, to at most the whole price. This is the
price the tenant pays while each voucher has cap left: at settlement (`store.vouchers`) a
voucher pays its share of the whole charge up to what is left of its cap, so a voucher nearly
spent saves less than the plan says, never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from suanli.plan.prepared import PreparedNetwork


@dataclass(frozen=True, slots=True)
class VoucherTerms:
    """What the planner needs of a voucher that can pay now."""

    share: float  # of the price, in (0, 1]
    centers: frozenset[str] = frozenset()  # empty with `regions` empty: anywhere
    regions: frozenset[str] = frozenset()
    issuer: str = ""

    def applies_at(self, center: str, region: str) -> bool:
        if not self.centers and not self.regions:
            return True
        return center in self.centers or region in self.regions


def terms_of(vouchers: Iterable[Mapping[str, Any]]) -> tuple[VoucherTerms, ...]:
    """From store rows (`store.vouchers.active`): share, centers, regions, issuer."""
    return tuple(VoucherTerms(float(v["share"]), frozenset(v["centers"]),
                              frozenset(v["regions"]), str(v["issuer"])) for v in vouchers)


def covered_share(net: PreparedNetwork, pools: np.ndarray,
                  vouchers: Sequence[VoucherTerms]) -> np.ndarray:
    """[len(pools)] the share of the price the vouchers pay at each pool (0 to 1)."""
    share = np.zeros(len(pools))
    if not vouchers:
        return share
    regions = net.routes.regions
    for k, p in enumerate(pools):
        c = int(net.pool_center[p])
        center, region = net.center_ids[c], regions[int(net.center_region[c])]
        share[k] = sum(v.share for v in vouchers if v.applies_at(center, region))
    return np.minimum(share, 1.0)


def net_prices(price: np.ndarray, net: PreparedNetwork, pools: np.ndarray,
               vouchers: Sequence[VoucherTerms]) -> np.ndarray:
    """The tenant's price per chip-hour at each of `pools` (`price` unchanged without
    vouchers, the same array: the planner's results stay bit-identical)."""
    if not vouchers:
        return price
    return price * (1.0 - covered_share(net, pools, vouchers))


def describe(vouchers: Sequence[VoucherTerms]) -> list[str]:
    """Lines for a plan's explanation: which vouchers priced it, and where they pay."""
    out = []
    for v in vouchers:
        where = ", ".join(sorted(v.centers | v.regions)) or "anywhere"
        out.append(f"voucher{' from ' + v.issuer if v.issuer else ''}: pays {v.share:.0%} of "
                   f"the price at {where}; costs are your net price")
    return out
