"""How the engine names and resolves a policy given as a registered name or a callable."""

from __future__ import annotations

from suanli.policies.base import Policy

# Heterogeneity-agnostic policies: Gavel shuffles the pool order for them each round.
AGNOSTIC_POLICIES = frozenset(
    {"fifo", "max_min_fairness", "finish_time_fairness", "min_total_duration", "las", "srtf"}
)


def policy_name(policy: str | Policy) -> str:
    """A policy's registered name (a callable's `policy_name`, `name` or function name)."""
    if isinstance(policy, str):
        try:
            from suanli.policies import canonical_name

            return canonical_name(policy)
        except ImportError:
            return policy
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
