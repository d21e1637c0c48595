"""What a command created so far, so a failure half-way can say exactly what was left behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from ...core.errors import EdgeInferError
from .errors import AwsError, client_error


@dataclass
class Ledger:
    created: list[str] = field(default_factory=list)  # "what: where" lines, in order
    reused: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.created.append(what)

    def reuse(self, what: str) -> None:
        self.reused.append(what)

    def note(self) -> str:
        return f"; already created (kept, safe to reuse): {', '.join(self.created)}" if self.created else \
            "; nothing was created"


@contextmanager
def reported(ledger: Ledger, doing: str) -> Iterator[Ledger]:
    """Re-raise any failure as one typed error that also lists what was created before it."""
    try:
        yield ledger
    except EdgeInferError as exc:
        raise type(exc)(f"{exc.problem}{ledger.note()}", exc.fix) from exc
    except ClientError as exc:
        code, msg = client_error(exc)
        raise AwsError(f"{doing}: AWS answered {code}: {msg}{ledger.note()}",
                       "check the names, region and your permissions, then run the command again") from exc
    except BotoCoreError as exc:
        raise AwsError(f"{doing}: {exc}{ledger.note()}", "check your AWS credentials and network") from exc
