"""A rollout plan's ``aws`` section as a Greengrass deployment's ``iotJobConfiguration``: the IoT job behind
each ring's deployment notifies devices at an exponential rate, cancels itself when its abort criteria trip,
and times out devices stuck in progress. AWS IoT enforces all three per device, without edgeinfer."""

from __future__ import annotations

from typing import Any

from ..rollout.plan import AwsJob


def iot_job_configuration(job: AwsJob) -> dict[str, Any]:
    return {
        "jobExecutionsRolloutConfig": {
            "exponentialRate": {"baseRatePerMinute": job.base_rate_per_minute, "incrementFactor": job.increment_factor,
                                "rateIncreaseCriteria": {"numberOfSucceededThings": job.increase_after_succeeded}},
            "maximumPerMinute": job.maximum_per_minute},
        "abortConfig": {"criteriaList": [
            {"failureType": c.failure_type, "action": "CANCEL", "thresholdPercentage": c.threshold_pct,
             "minNumberOfExecutedThings": c.min_executed} for c in job.abort]},
        "timeoutConfig": {"inProgressTimeoutInMinutes": job.in_progress_timeout_minutes},
    }
