"""The AWS IoT Jobs engine behind Greengrass deployments, played on moto's IoT.

Greengrass v2 makes an IoT job for every deployment (on the caller's behalf); AWS IoT then keeps the job's
process details (how many executions succeeded, failed, were rejected, timed out, are queued or in
progress) and cancels the job itself when its ``abortConfig`` criteria trip. moto stores jobs and answers
``DescribeJob``/``ListJobExecutionsForJob``/``CancelJob`` through the real boto3 IoT client, but never
counts executions nor applies abort criteria: this does, in moto's own job records, so what edgeinfer reads
with boto3 is what AWS IoT would answer. Counts are kept incrementally (a 10,000-device ring costs no scan).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from moto.iot.models import FakeJobExecution, iot_backends

# Greengrass core device execution status -> IoT job execution status
JOB_STATUS = {"QUEUED": "QUEUED", "IN_PROGRESS": "IN_PROGRESS", "SUCCEEDED": "SUCCEEDED", "COMPLETED": "SUCCEEDED",
              "FAILED": "FAILED", "REJECTED": "REJECTED", "TIMED_OUT": "TIMED_OUT", "CANCELED": "CANCELED"}
FIELDS = {"QUEUED": "numberOfQueuedThings", "IN_PROGRESS": "numberOfInProgressThings",
          "SUCCEEDED": "numberOfSucceededThings", "FAILED": "numberOfFailedThings",
          "REJECTED": "numberOfRejectedThings", "TIMED_OUT": "numberOfTimedOutThings",
          "CANCELED": "numberOfCanceledThings"}
EXECUTED = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT")


class IotJobs:
    def __init__(self, iot: Any, region: str, account: str) -> None:
        self.iot, self.region, self.account = iot, region, account
        self.counts: dict[str, Counter[str]] = {}
        self.status: dict[tuple[str, str], str] = {}
        self.abort: dict[str, list[dict[str, Any]]] = {}

    def _job(self, job_id: str) -> Any:
        return iot_backends[self.account][self.region].jobs[job_id]

    def create(self, job_id: str, target_arn: str, devices: list[str], config: dict[str, Any],
               document: dict[str, Any]) -> None:
        """What Greengrass asks of AWS IoT: a continuous job on the target with the deployment's job config."""
        self.iot.create_job(jobId=job_id, targets=[target_arn], targetSelection="CONTINUOUS",
                            document=json.dumps(document, default=str),
                            **{k: v for k, v in config.items() if k in ("jobExecutionsRolloutConfig", "abortConfig",
                                                                        "timeoutConfig")})
        backend = iot_backends[self.account][self.region]
        for key in [k for k in backend.job_executions if k[0] == job_id]:
            del backend.job_executions[key]  # moto made one for the group ARN as if it were a thing
        self.counts[job_id] = Counter({"QUEUED": len(devices)})
        self.abort[job_id] = (config.get("abortConfig") or {}).get("criteriaList", [])
        for d in devices:
            self.status[(job_id, d)] = "QUEUED"
        self._publish(job_id)
        job = self._job(job_id)
        job.status = "IN_PROGRESS"

    def report(self, job_id: str, thing: str, gg_status: str) -> None:
        job = self._job(job_id)
        new = JOB_STATUS[gg_status]
        old = self.status.get((job_id, thing))
        if job.status == "CANCELED" and old in (None, "QUEUED", "CANCELED"):
            return  # a canceled job notifies no one else
        counts = self.counts[job_id]
        if old is not None:
            counts[old] -= 1
        counts[new] += 1
        self.status[(job_id, thing)] = new
        backend = iot_backends[self.account][self.region]
        arn = f"arn:aws:iot:{self.region}:{self.account}:thing/{thing}"
        backend.job_executions[(job_id, thing)] = FakeJobExecution(job_id, arn, status=new)
        self._check_abort(job_id)
        self._publish(job_id)

    def _check_abort(self, job_id: str) -> None:
        job, counts = self._job(job_id), self.counts[job_id]
        if job.status == "CANCELED":
            return
        executed = sum(counts[s] for s in EXECUTED)
        for c in self.abort[job_id]:
            kinds = ("FAILED", "REJECTED", "TIMED_OUT") if c["failureType"] == "ALL" else (c["failureType"],)
            bad = sum(counts[k] for k in kinds)
            if executed >= c["minNumberOfExecutedThings"] and 100.0 * bad / executed >= c["thresholdPercentage"]:
                self.cancel(job_id, comment=f"abortConfig: {c['failureType']} {bad}/{executed} executed >= "
                                            f"{c['thresholdPercentage']:g}%")
                return

    def cancel(self, job_id: str, comment: str | None = None, reason_code: str | None = None) -> None:
        """The job stops: queued executions are canceled (in-progress ones finish)."""
        job, counts = self._job(job_id), self.counts[job_id]
        job.status, job.comment, job.reason_code = "CANCELED", comment or job.comment, reason_code or job.reason_code
        counts["CANCELED"] += counts.pop("QUEUED", 0)
        for key, s in self.status.items():
            if key[0] == job_id and s == "QUEUED":
                self.status[key] = "CANCELED"
        self._publish(job_id)

    def _publish(self, job_id: str) -> None:
        job = self._job(job_id)
        job.job_process_details = {**{f: self.counts[job_id][s] for s, f in FIELDS.items()},
                                   "numberOfRemovedThings": 0, "processingTargets": job.targets}
        job.last_updated_at = dt.datetime.now(dt.timezone.utc)
