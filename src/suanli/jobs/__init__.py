"""Job specs: the YAML a user submits, its model architecture and its work."""

from suanli.jobs.models import ModelArch, builtin_models, resolve_model
from suanli.jobs.spec import (
    CountRange,
    DatasetRef,
    GenericWork,
    InferenceWork,
    JobKind,
    JobSpec,
    Measurement,
    Resources,
    TrainWork,
    load_job,
    parse_job,
)

__all__ = [
    "CountRange",
    "DatasetRef",
    "GenericWork",
    "InferenceWork",
    "JobKind",
    "JobSpec",
    "Measurement",
    "ModelArch",
    "Resources",
    "TrainWork",
    "builtin_models",
    "load_job",
    "parse_job",
    "resolve_model",
]
