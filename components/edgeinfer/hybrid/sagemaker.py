"""The fallback's SageMaker client: boto3 ``sagemaker-runtime`` ``InvokeEndpoint``, through netguard.

Credentials come from boto3's default chain: on a Greengrass core device that is the token exchange service
(the nucleus sets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` for a component that depends on
``aws.greengrass.TokenExchangeService``; the role needs ``sagemaker:InvokeEndpoint`` on the endpoint), elsewhere
the environment, the shared files or an instance role. boto3 is imported only when this client is built.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from ..core.errors import EdgeInferError
from ..core.fallback.client import Refused, Reply, Unreachable
from ..core.fallback.config import SageMakerEndpoint
from ..core.netguard import Blocked, Outbound
from .botoguard import guard


class SageMakerClient:
    name = "sagemaker"

    def __init__(self, endpoint: SageMakerEndpoint, client: Any, send: Any) -> None:
        self.endpoint, self._client, self._send = endpoint, client, send

    @classmethod
    def from_config(cls, endpoint: SageMakerEndpoint, outbound: Outbound) -> SageMakerClient:
        session = boto3.session.Session(region_name=endpoint.region)
        client = session.client("sagemaker-runtime", endpoint_url=endpoint.endpoint_url,
                                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        return cls(endpoint, client, guard(client, outbound, endpoint.ca_file))

    def invoke(self, body: bytes, content_type: str, accept: str, timeout_s: float) -> Reply:
        self._send.timeout_s = timeout_s
        kw: dict[str, Any] = {"EndpointName": self.endpoint.endpoint_name, "Body": body,
                              "ContentType": content_type, "Accept": accept}
        if self.endpoint.target_variant:
            kw["TargetVariant"] = self.endpoint.target_variant
        try:
            resp = self._client.invoke_endpoint(**kw)
            return Reply(resp["Body"].read(), resp.get("ContentType") or "")
        except Blocked as exc:
            raise Refused(exc.problem, exc.fix) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise Unreachable(f"SageMaker endpoint {self.endpoint.endpoint_name} unreachable: {exc}",
                              "check the device's connection") from exc
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise Refused(f"SageMaker endpoint {self.endpoint.endpoint_name} answered "
                          f"{err.get('Code', 'an error')}: {str(err.get('Message', ''))[:200]}",
                          "check the endpoint's name, its status and the role's sagemaker:InvokeEndpoint") from exc
        except BotoCoreError as exc:  # read timeouts, missing credentials
            kind = Unreachable if "timeout" in type(exc).__name__.lower() else Refused
            raise kind(f"SageMaker endpoint {self.endpoint.endpoint_name}: {exc}",
                       "check the device's connection and credentials") from exc
        except EdgeInferError:
            raise

    def close(self) -> None:
        self._client.close()
