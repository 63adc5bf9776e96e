"""The broker: where should a job run, over a whole network, data included."""

from suanli.plan.objectives import OBJECTIVES, Objective, resolve_objective
from suanli.plan.pareto import pareto_mask
from suanli.plan.planner import plan
from suanli.plan.result import PlacementOption, PlanResult, PoolShare
from suanli.plan.routing import RouteTable, route_table
from suanli.plan.state import NetworkState, PoolState, RunningJob
from suanli.plan.units import format_duration, format_money, parse_duration

__all__ = [
    "OBJECTIVES", "NetworkState", "Objective", "PlacementOption", "PlanResult", "PoolShare",
    "PoolState", "RouteTable", "RunningJob", "format_duration", "format_money", "pareto_mask",
    "parse_duration", "plan", "resolve_objective", "route_table",
]
