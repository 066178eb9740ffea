"""EnvVar references for the variables that are set, shared by every domain's resources.

Only variables set when the definitions are built are referenced: an EnvVar of an unset
variable fails when the resource is resolved, and most deployments leave most optional
settings unset.
"""

import dagster as dg

from media_import.settings import first_set


def env_var_if_set(*names: str) -> dg.EnvVar | None:
    """An EnvVar of the first of `names` that is set (aliases in order), else None."""
    name = first_set(names)
    return dg.EnvVar(name) if name else None


def int_env_var_if_set(name: str) -> int | None:  # an IntEnvVar is an int
    return dg.EnvVar.int(name) if first_set((name,)) else None
