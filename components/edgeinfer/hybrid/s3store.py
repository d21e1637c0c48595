"""The captures' S3 store: PutObject under the artifact bucket's captures/ prefix, through netguard.

Credentials: boto3's default chain (the Greengrass token exchange service on a core device: the CDK stack grants
its role s3:PutObject on exactly ``<artifact bucket>/captures/*``).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..core.captures.config import S3Store
from ..core.captures.uploader import StoreUnavailable
from ..core.netguard import Blocked, Outbound
from .botoguard import guard


class S3CaptureStore:
    name = "s3"

    def __init__(self, settings: S3Store, client: Any, send: Any) -> None:
        self.settings, self._client, self._send = settings, client, send

    @classmethod
    def from_config(cls, settings: S3Store, outbound: Outbound) -> S3CaptureStore:
        session = boto3.session.Session(region_name=settings.region)
        addressing = "path" if settings.endpoint_url else "auto"
        client = session.client("s3", endpoint_url=settings.endpoint_url, config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": addressing}))
        return cls(settings, client, guard(client, outbound, settings.ca_file))

    def put(self, key: str, data: bytes, content_type: str, timeout_s: float) -> None:
        self._send.timeout_s = timeout_s
        try:
            self._client.put_object(Bucket=self.settings.bucket, Key=key, Body=data, ContentType=content_type)
        except Blocked as exc:
            raise StoreUnavailable(exc.problem, exc.fix) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "an error")
            raise StoreUnavailable(f"S3 answered {code} for s3://{self.settings.bucket}/{key}",
                                   "check the bucket and that the role may write its captures/ prefix") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"S3 unreachable: {exc}", "uploads resume when the connection is back") from exc

    def uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def close(self) -> None:
        self._client.close()
