"""How the engine names and resolves a policy given as a registered name or a callable."""

from __future__ import annotations

from suanli.policies.base import Policy, PolicyTraits


def policy_name(policy: str | Policy) -> str:
    """A policy's registered name (a callable's `policy_name`, `name` or function name)."""
    if isinstance(policy, str):
        from suanli.policies import canonical_name

        return canonical_name(policy)
    for attr in ("policy_name", "name", "__name__"):
        value = getattr(policy, attr, None)
        if isinstance(value, str):
            return value
    return type(policy).__name__


def resolve_policy(policy: str | Policy) -> Policy:
    if not isinstance(policy, str):
        return policy
    from suanli.policies import get_policy  # the registry is owned by the policies package

    return get_policy(policy)


def resolve_traits(policy: str | Policy) -> PolicyTraits:
    """The traits a policy was registered with; a callable not registered declares its own
    as a `traits` attribute (default: aware of chip types, work-conserving)."""
    if isinstance(policy, str):
        from suanli.policies import policy_traits

        return policy_traits(policy)
    traits = getattr(policy, "traits", None)
    return traits if isinstance(traits, PolicyTraits) else PolicyTraits()
