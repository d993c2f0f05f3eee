"""A student's share of the training workers: at most `limit` jobs queued or running at once."""
from __future__ import annotations


class QuotaError(ValueError):
    """A student asked for more trainings than the quota allows; the message says what to do."""


def check_quota(active: int, asked: int, limit: int) -> None:
    """Raise QuotaError unless `asked` more jobs fit beside the `active` ones (queued or running)."""
    if asked < 1 or active + asked <= limit:
        return
    free = max(0, limit - active)
    raise QuotaError(f"A student may have at most {limit} training job{'s' * (limit != 1)} queued or running at "
                     f"once; you have {active}, and this would start {asked}. "
                     + (f"Start at most {free} now (fewer trials, no baseline)." if free else
                        "Wait for one of yours to finish (or stop it)."))
