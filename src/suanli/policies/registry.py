"""Policies by name: a decorator registers a function, `get_policy` finds it.

Adding a policy is one small module in this package with `@register("name")` on a function of
`PolicyState`; every module of the package is imported the first time a name is looked up, so
no list elsewhere needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from suanli.errors import UnknownNameError
from suanli.policies.base import Policy, PolicyTraits

_POLICIES: dict[str, Policy] = {}
_ALIASES: dict[str, str] = {}
_TRAITS: dict[str, PolicyTraits] = {}
_loaded = False


def register(name: str, *, aliases: tuple[str, ...] | list[str] = (), agnostic: bool = False,
             work_conserving: bool = True,
             placement_aware: bool = False, elastic: bool = False,
             head_of_queue: bool = False) -> Callable[[Policy], Policy]:
    """Register `fn` under `name` (and `aliases`) with its traits; the name must be new."""

    def wrap(fn: Policy) -> Policy:
        for key in (name, *aliases):
            if key in _POLICIES or key in _ALIASES:
                raise ValueError(f"policy name {key!r} registered twice")
        _POLICIES[name] = fn
        _TRAITS[name] = PolicyTraits(agnostic=agnostic, work_conserving=work_conserving,
                                     placement_aware=placement_aware, elastic=elastic,
                                     head_of_queue=head_of_queue)
        for alias in aliases:
            _ALIASES[alias] = name
        fn.policy_name = name  # type: ignore[attr-defined]
        fn.traits = _TRAITS[name]  # type: ignore[attr-defined]
        return fn

    return wrap


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import suanli.policies as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_") and module.name not in {"base", "registry"}:
            importlib.import_module(f"{package.__name__}.{module.name}")
    _loaded = True


def canonical_name(name: str) -> str:
    """The registered name for `name` or one of its aliases (case and '-' insensitive)."""
    _load_all()
    key = name.strip().lower().replace("-", "_")
    if key in _POLICIES:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownNameError("policy", name, sorted([*_POLICIES, *_ALIASES]))


def get_policy(name: str) -> Policy:
    """The policy registered as `name` (or an alias); UnknownNameError lists close names."""
    return _POLICIES[canonical_name(name)]


def policy_names() -> list[str]:
    """Registered policy names (aliases not included), sorted."""
    _load_all()
    return sorted(_POLICIES)


def policy_aliases() -> dict[str, str]:
    """Alias -> registered name."""
    _load_all()
    return dict(sorted(_ALIASES.items()))


def policy_traits(name: str) -> PolicyTraits:
    """The traits `name` (or an alias) was registered with."""
    return _TRAITS[canonical_name(name)]
