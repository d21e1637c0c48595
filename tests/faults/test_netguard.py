"""Outbound addresses (issue 11, item 2) against real sockets and real servers on 127.0.0.1: the allow-list
patterns, the addresses refused after resolution whatever an allow-list says, the connection made to the
address that was checked (TLS still verified against the name), redirects re-checked hop by hop and bounded
for model downloads and never followed for webhooks, and errors that tell the cloud "failed" or "blocked",
never what an internal host answered.

Names such as ``evil.example`` resolve through an injected resolver (the wire's DNS, not the code under test)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.azure.errors import DeliveryError
from edgeinfer.azure.model_download import ModelDownloader
from edgeinfer.azure.modelref import ModelRef
from edgeinfer.core.errors import EdgeInferError
from edgeinfer.core.netguard import Blocked, Outbound, address_refused, host_allowed, pattern_problem, resolve_checked
from edgeinfer.core.remoteconfig import DEFAULT_MODEL_HOSTS, RemotePolicy
from edgeinfer.core.rules.actions import WEBHOOKS, post_webhook
from edgeinfer.core.rules.config import WebhookAction
from tests.azure.packages import sha256
from tests.telemetry.pki import Pki, make_pki

from .net_servers import PlainServer, RedirectingFileServer, TableResolver, closed_port, name_pki

BLOB = bytes(range(256)) * 256  # 64 KiB
LOOPBACK = RemotePolicy(model_hosts=["127.0.0.1"])
META = "169.254.169.254"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("netguard-pki"))  # server certificate: localhost and 127.0.0.1


@pytest.fixture
def files(pki: Pki) -> Iterator[RedirectingFileServer]:
    server = RedirectingFileServer(pki).start()
    yield server
    server.stop()


@pytest.fixture
def plain() -> Iterator[PlainServer]:
    server = PlainServer()
    yield server
    server.stop()


def downloader(root: Path, ca: Path, policy: RemotePolicy = LOOPBACK, **kw: Any) -> ModelDownloader:
    return ModelDownloader(root, ssl_context=ssl.create_default_context(cafile=str(ca)), timeout_s=5, attempts=2,
                           policy=policy, **kw)


def ref(uri: str, data: bytes = BLOB) -> ModelRef:
    return ModelRef(name="m", version="1", uri=uri, sha256=sha256(data))


def fetch_error(d: ModelDownloader, uri: str, data: bytes = BLOB) -> str:
    with pytest.raises(DeliveryError) as err:
        d.fetch(ref(uri, data))
    return str(err.value)


# -- the allow-list and the refused addresses ---------------------------------------------------------
@pytest.mark.parametrize(("host", "patterns", "allowed"), [
    ("models.example.com", ["models.example.com"], True),
    ("Models.Example.COM", ["models.example.com"], True),  # names are case-insensitive
    ("models.example.com.", ["models.example.com"], True),  # the root's trailing dot
    ("models.example.com", ["MODELS.example.com"], True),
    ("evil-models.example.com", ["models.example.com"], False),
    ("models.example.com.evil.net", ["models.example.com"], False),
    ("acct.blob.core.windows.net", ["*.blob.core.windows.net"], True),
    ("a.b.c.blob.core.windows.net", ["*.blob.core.windows.net"], True),  # any depth
    ("blob.core.windows.net", ["*.blob.core.windows.net"], False),  # not the bare suffix
    ("evilblob.core.windows.net", ["*.blob.core.windows.net"], False),  # a label boundary, not a string suffix
    ("acct.blob.core.windows.net.evil.net", ["*.blob.core.windows.net"], False),
    ("bucket.s3.amazonaws.com", list(DEFAULT_MODEL_HOSTS), True),
    ("mybucket.s3.cn-north-1.amazonaws.com.cn", list(DEFAULT_MODEL_HOSTS), True),
    ("127.0.0.1", list(DEFAULT_MODEL_HOSTS), False),
    ("localhost", list(DEFAULT_MODEL_HOSTS), False),
    ("10.1.2.3", ["10.1.2.3"], True),
    ("10.1.2.4", ["10.1.2.3"], False),
    ("10.1.2.3", ["10.0.0.0/8"], True),
    ("11.1.2.3", ["10.0.0.0/8"], False),
    ("2001:db8::5", ["2001:db8::/32"], True),
    ("[2001:db8::5]", ["2001:db8::/32"], True),
    ("2001:db9::5", ["2001:db8::/32"], False),
    ("::ffff:10.1.2.3", ["10.0.0.0/8"], False),  # an IPv6 form is not the IPv4 network
    ("10.example.com", ["10.0.0.0/8"], False),  # networks match addresses written in the URL, not names
    ("10.1.2.3", ["*.1.2.3"], False),  # a wildcard never matches an address
    ("anything.example", [], False),
    ("", ["*.example"], False),
])
def test_allow_list_patterns(host: str, patterns: list[str], allowed: bool) -> None:
    assert host_allowed(host, patterns) is allowed


@pytest.mark.parametrize(("pattern", "ok"), [
    ("models.example.com", True), ("*.blob.core.windows.net", True), ("10.0.0.0/8", True), ("fd00::/8", True),
    ("127.0.0.1", True), ("*", False), ("a.*.example", False), ("*.", False), ("*.10.0.0.1", False),
    ("10.0.0.0/33", False), ("bad host", False), ("", False)])
def test_pattern_problems(pattern: str, ok: bool) -> None:
    assert (pattern_problem(pattern) is None) is ok


@pytest.mark.parametrize(("address", "refused"), [
    (META, True), ("169.254.0.1", True), ("fe80::1", True), ("fe80::1%eth0", True), ("fd00:ec2::254", True),
    ("::ffff:169.254.169.254", True), ("::ffff:a9fe:a9fe", True), ("0.0.0.0", True), ("0.1.2.3", True),
    ("::", True), ("224.0.0.251", True), ("239.1.1.1", True), ("ff02::1", True), ("255.255.255.255", True),
    ("127.0.0.1", False), ("::1", False), ("10.0.0.1", False), ("192.168.1.10", False), ("8.8.8.8", False),
    ("fd00:ec2::253", False), ("2600:1f18::1", False), ("::ffff:10.0.0.1", False)])
def test_refused_addresses(address: str, refused: bool) -> None:
    assert address_refused(address) is refused


def test_every_resolved_address_must_be_acceptable() -> None:
    resolve = TableResolver({"evil.example": [META], "mixed.example": ["127.0.0.1", "fd00:ec2::254"],
                             "good.example": ["127.0.0.1", "127.0.0.1", "::1"]})
    for name in ("evil.example", "mixed.example"):
        with pytest.raises(Blocked) as err:
            resolve_checked(name, 443, resolve)
        assert err.value.problem == f"{name} resolves to a link-local or metadata address"
        assert "169.254" not in str(err.value) and "fd00" not in str(err.value), "no resolved address is told"
        assert isinstance(err.value, EdgeInferError) and "\n" not in str(err.value)
    assert resolve_checked("good.example", 443, resolve) == ["127.0.0.1", "::1"]
    # literal addresses, however written, are checked without asking the resolver
    for literal in (META, "[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe", "[fe80::1%25eth0]"):
        with pytest.raises(Blocked):
            resolve_checked(literal, 80, resolve)
    assert resolve.asked == ["evil.example", "mixed.example", "good.example"]


def test_numeric_spellings_of_the_metadata_address_are_refused() -> None:
    """The system resolver turns 2852039166 and 0xa9.0xfe.0xa9.0xfe into 169.254.169.254 (no DNS query)."""
    for spelling in ("2852039166", "0xa9.0xfe.0xa9.0xfe", "169.254.43518"):
        with pytest.raises(Blocked):
            resolve_checked(spelling, 80)


# -- model downloads ----------------------------------------------------------------------------------
def test_the_connection_goes_to_the_checked_address_and_tls_checks_the_name(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """models.example resolves (once) to 127.0.0.1, then to the metadata address: a second resolution at connect
    time would follow the rebinding. The certificate names models.example only, so verifying it against the
    address would fail; other.example (same address, same certificate) must fail verification."""
    named = name_pki(tmp_path / "pki", "models.example")
    server = RedirectingFileServer(named).start()
    try:
        server.files["/m/blob.bin"] = BLOB
        resolve = TableResolver({"models.example": [["127.0.0.1"], [META]], "other.example": ["127.0.0.1"]})
        policy = RemotePolicy(model_hosts=["models.example", "other.example"])
        d = downloader(tmp_path / "models", named.ca, policy, resolve=resolve)
        path = d.fetch(ref(f"https://models.example:{server.port}/m/blob.bin"))
        assert path.read_bytes() == BLOB and [s.path for s in server.seen] == ["/m/blob.bin"]
        assert resolve.asked == ["models.example"], "one resolution per connection, checked, then connected to"
        # the next connection to the rebinding name finds the metadata address, and is refused
        rebound = fetch_error(d, f"https://models.example:{server.port}/m/other.bin")
        assert rebound.startswith("model m 1: download from models.example blocked: models.example resolves to "
                                  "a link-local or metadata address")
        server.files["/m/two.bin"] = BLOB[::-1]
        other = fetch_error(d, f"https://other.example:{server.port}/m/two.bin", BLOB[::-1])
        assert other.startswith("model m 1: download from other.example failed (see the module log)")
        assert "TLS verification of other.example failed" in caplog.text
        assert len(server.seen) == 1, "no request went through the unverified connection"
    finally:
        server.stop()


def test_a_name_resolving_to_the_metadata_address_is_blocked_even_when_allowed(tmp_path: Path, pki: Pki) -> None:
    resolve = TableResolver({"evil.example": [META], "evil6.example": ["::ffff:169.254.169.254"]})
    policy = RemotePolicy(model_hosts=["evil.example", "evil6.example", "169.254.0.0/16"])
    d = downloader(tmp_path / "models", pki.ca, policy, resolve=resolve)
    for host in ("evil.example", "evil6.example"):
        text = fetch_error(d, f"https://{host}/latest/meta-data/iam/")
        assert text.startswith(f"model m 1: download from {host} blocked: {host} resolves to a link-local or "
                               "metadata address -> ")
        assert "169.254" not in text
    text = fetch_error(d, f"https://{META}/latest/meta-data/")
    assert f"blocked: {META} resolves to a link-local or metadata address" in text
    assert not any(p.is_file() for p in d.root.rglob("*"))


def test_hosts_outside_model_hosts_are_blocked_before_connecting(tmp_path: Path, pki: Pki,
                                                                 files: RedirectingFileServer) -> None:
    files.files["/m/blob.bin"] = BLOB
    d = downloader(tmp_path / "models", pki.ca, RemotePolicy())  # the defaults: the vendors' storage domains
    text = fetch_error(d, files.url("/m/blob.bin"))
    assert text == ("model m 1: download from 127.0.0.1 blocked: 127.0.0.1 is not in remote.model_hosts -> add the "
                    "host to remote.model_hosts in the device's local settings, or use an allowed host")
    assert files.seen == []


def test_http_model_uris_need_model_http(tmp_path: Path, pki: Pki, plain: PlainServer) -> None:
    plain.files["/m/blob.bin"] = BLOB
    strict = downloader(tmp_path / "a", pki.ca, LOOPBACK)
    text = fetch_error(strict, plain.url("/m/blob.bin"))
    assert text.startswith("model m 1: download from 127.0.0.1 blocked: a http:// URL is refused -> serve the "
                           "model over https://, or set remote.model_http: true")
    assert plain.seen == []
    allowed = ModelDownloader(tmp_path / "b", policy=RemotePolicy(model_hosts=["127.0.0.1"], model_http=True))
    assert allowed.fetch(ref(plain.url("/m/blob.bin"))).read_bytes() == BLOB


def test_redirects_are_followed_and_each_hop_is_checked(tmp_path: Path, pki: Pki, plain: PlainServer,
                                                        files: RedirectingFileServer) -> None:
    """S3 presigned URLs answer 307: followed to an allowed host; a hop to a host outside the list (localhost,
    the same server), to the metadata address (allowed or not), or down to http:// is refused, unrequested."""
    files.files["/m/blob.bin"] = BLOB
    files.redirects.update({
        "/presigned": (307, "/m/blob.bin"),
        "/to-localhost": (307, files.url("/m/blob.bin", host=f"localhost:{files.port}")),
        "/to-metadata": (302, f"https://{META}/latest/meta-data/"),
        "/to-metadata6": (301, "https://[::ffff:169.254.169.254]/latest/meta-data/"),
        "/to-http": (308, plain.url("/m/blob.bin"))})
    plain.files["/m/blob.bin"] = BLOB
    d = downloader(tmp_path / "models", pki.ca, RemotePolicy(model_hosts=["127.0.0.1", META, "::/0"]))
    assert d.fetch(ref(files.url("/presigned"))).read_bytes() == BLOB
    assert [(s.path, s.status) for s in files.seen] == [("/presigned", 307), ("/m/blob.bin", 200)]
    files.seen.clear()

    blocked = {path: fetch_error(d, files.url(path)) for path in ("/to-localhost", "/to-metadata", "/to-metadata6",
                                                                    "/to-http")}
    assert blocked["/to-localhost"].startswith("model m 1: download from 127.0.0.1 blocked: it redirects to "
                                               "localhost, which is not in remote.model_hosts -> ")
    assert blocked["/to-metadata"].startswith(f"model m 1: download from 127.0.0.1 blocked: {META} resolves to a "
                                              "link-local or metadata address")
    assert blocked["/to-metadata6"].startswith("model m 1: download from 127.0.0.1 blocked: ::ffff:169.254.169.254 "
                                               "resolves to a link-local or metadata address")
    assert blocked["/to-http"].startswith("model m 1: download from 127.0.0.1 blocked: it redirects to a http:// "
                                          "URL, which is refused")
    assert [s.path for s in files.seen] == ["/to-localhost", "/to-metadata", "/to-metadata6", "/to-http"], \
        "each refused once, not retried, and the blocked hop never requested"
    assert plain.seen == []


def test_at_most_five_redirects(tmp_path: Path, pki: Pki, files: RedirectingFileServer) -> None:
    files.files["/m/blob.bin"] = BLOB
    for chain, hops in (("a", 5), ("b", 6)):
        for i in range(hops):
            files.redirects[f"/{chain}{i}"] = (307, f"/{chain}{i + 1}" if i + 1 < hops else "/m/blob.bin")
    d = downloader(tmp_path / "models", pki.ca)
    assert d.fetch(ref(files.url("/a0"))).read_bytes() == BLOB, "five hops are followed"
    files.seen.clear()
    d2 = downloader(tmp_path / "models2", pki.ca)
    assert fetch_error(d2, files.url("/b0")).startswith("model m 1: download from 127.0.0.1 failed (see the module "
                                                        "log)")
    assert [s.path for s in files.seen] == [f"/b{i}" for i in range(6)], "the sixth hop is not followed, nor retried"


def test_a_closed_port_a_404_and_a_tls_refusal_read_the_same(tmp_path: Path, pki: Pki, files: RedirectingFileServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The twin's writer must not learn which internal ports are open: every failure to get the file is the
    same text; the module log keeps the difference."""
    caplog.set_level(logging.INFO, logger="edgeinfer")
    d = downloader(tmp_path / "models", pki.ca)
    untrusting = downloader(tmp_path / "other", pki.wrong_ca)
    files.files["/m/blob.bin"] = BLOB
    files.redirects["/m/busy.bin"] = (503, "/")  # any status with a Location: retried, then reported as the others
    texts = {"closed": fetch_error(d, f"https://127.0.0.1:{closed_port()}/m/blob.bin"),
             "404": fetch_error(d, files.url("/m/gone.bin")),
             "503 twice": fetch_error(d, files.url("/m/busy.bin")),
             "tls": fetch_error(untrusting, files.url("/m/blob.bin"))}
    assert set(texts.values()) == {"model m 1: download from 127.0.0.1 failed (see the module log) -> check "
                                   "model.uri and that the device can reach it (the old model keeps running); it "
                                   "is retried on the next desired-properties update"}, texts
    log = caplog.text
    assert "Connection refused" in log and "answered HTTP 404" in log and "TLS verification" in log
    assert "HTTP 503" in log


# -- webhooks -------------------------------------------------------------------------------------------
def hook(url: str, **kw: Any) -> WebhookAction:
    return WebhookAction(url=url, timeout_s=5, **kw)


def test_webhooks_connect_to_the_checked_address(plain: PlainServer) -> None:
    resolve = TableResolver({"evil.example": ["127.0.0.1"], "meta.example": [META]})
    guarded = Outbound(schemes=WEBHOOKS.schemes, setting=WEBHOOKS.setting, resolve=resolve)
    assert post_webhook(hook(f"http://evil.example:{plain.port}/alerts"), b"{}", guarded) == (True, "HTTP 204")
    (seen,) = plain.seen
    assert (seen.method, seen.path, seen.headers["Host"]) == ("POST", "/alerts", f"evil.example:{plain.port}")
    assert post_webhook(hook(f"http://meta.example:{plain.port}/"), b"{}", guarded) == (
        False, "POST to meta.example blocked: meta.example resolves to a link-local or metadata address")
    assert resolve.asked == ["evil.example", "meta.example"] and len(plain.seen) == 1


@pytest.mark.parametrize("url", [f"http://{META}/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
                                 "https://[fd00:ec2::254]/latest/", "http://0.0.0.0:80/", "http://2852039166/",
                                 "http://[fe80::1%25eth0]:8080/"])
def test_webhooks_never_reach_metadata_or_link_local_addresses(url: str) -> None:
    ok, detail = post_webhook(hook(url), b"{}")
    assert not ok and detail.startswith("POST to ") and " blocked: " in detail and "resolves to" in detail


def test_webhook_redirects_are_not_followed_and_failures_read_the_same(plain: PlainServer,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edgeinfer")
    plain.redirects["/hook"] = (307, f"http://{META}/latest/meta-data/")
    plain.redirects["/hook2"] = (308, "/sink")
    outcomes = [post_webhook(hook(plain.url(p)), b'{"a":1}') for p in ("/hook", "/hook2")]
    assert [r.path for r in plain.seen] == ["/hook", "/hook2"], "no request after the redirect"
    plain.post_status = 404
    outcomes.append(post_webhook(hook(plain.url("/missing")), b"{}"))
    outcomes.append(post_webhook(hook(f"http://127.0.0.1:{closed_port()}/hook"), b"{}"))
    assert set(outcomes) == {(False, "POST to 127.0.0.1 failed")}
    assert "answered HTTP 307 (redirects are not followed)" in caplog.text and "answered HTTP 404" in caplog.text
    assert "Connection refused" in caplog.text
