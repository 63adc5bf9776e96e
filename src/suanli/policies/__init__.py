"""Scheduling policies: plain functions of `PolicyState` returning an `Allocation`, by name."""

from suanli.policies.base import Allocation, Policy, PolicyState, PolicyTraits
from suanli.policies.registry import (
    canonical_name,
    get_policy,
    policy_aliases,
    policy_names,
    policy_traits,
    register,
)

__all__ = [
    "Allocation",
    "Policy",
    "PolicyState",
    "PolicyTraits",
    "canonical_name",
    "get_policy",
    "policy_aliases",
    "policy_names",
    "policy_traits",
    "register",
]
