"""Errors the store raises; each carries the HTTP status the service answers with."""

from __future__ import annotations

from decimal import Decimal

from suanli.errors import SuanliError


class StoreError(SuanliError):
    status = 400


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class QuotaExceeded(StoreError):
    status = 409

    def __init__(self, accelerator: str, limit: int, in_use: int, requested: int) -> None:
        super().__init__(
            f"quota exceeded for {accelerator}: limit {limit} chips, {in_use} in use by active "
            f"jobs, this job needs {requested}",
            field="resources.count", value=requested,
        )
        self.extra = {"accelerator": accelerator, "limit": limit, "in_use": in_use,
                      "requested": requested}


class InsufficientCredits(StoreError):
    """A job whose estimated cost would overdraw the tenant's balance."""

    status = 402

    def __init__(self, balance: Decimal, reserved: Decimal, required: Decimal,
                 currency: str = "CNY") -> None:
        super().__init__(
            f"insufficient credits: available {balance} {currency} (with {reserved} reserved "
            f"by active jobs), this job needs {required}",
            field="credits", value=str(required),
        )
        self.extra = {"balance": str(balance), "reserved": str(reserved),
                      "required": str(required), "currency": currency,
                      "available": str(balance), "needed": str(required)}
