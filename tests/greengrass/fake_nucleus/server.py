"""The socket side of the fake nucleus: eventstream-RPC over a Unix socket.

CONNECT must carry ``{"authToken": ...}`` of a known component (else CONNECT_ACK without the
accepted flag). A message opening a new stream names its ``operation``; the request is parsed with
the SDK's own model classes, a handler answers with a response shape (``service-model-type``),
unary streams end with TERMINATE_STREAM, SubscribeTo* streams stay open for events. Errors are
APPLICATION_ERROR messages carrying the SDK's error shapes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from awsiot import eventstreamrpc as rpc
from awsiot.greengrasscoreipc import model

from .wire import CONNECTION_ACCEPTED, TERMINATE_STREAM, Decoder, FrameError, Message, MessageType, rpc_message

log = logging.getLogger(__name__)

#: operation model name -> the SDK's operation class (request, response and stream-event types)
OPERATIONS: dict[str, type[rpc.ClientOperation]] = {
    cls._model_name(): cls for cls in vars(model).values()
    if isinstance(cls, type) and issubclass(cls, rpc.ClientOperation) and cls is not rpc.ClientOperation
}
JSON = "application/json"


@dataclass(eq=False)
class Stream:
    """One operation's continuation. Events may be sent while it is open (SubscribeTo* streams)."""

    id: int
    operation: str
    conn: Connection
    component: str
    request: Any = None
    open: bool = True
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def send_event(self, shape: rpc.Shape) -> bool:
        if not self.open:
            return False
        return self.conn.send_shape(self.id, shape, terminate=False)

    def close(self) -> None:
        if self.open:
            self.open = False
            self.conn.send(rpc_message(MessageType.APPLICATION_MESSAGE, self.id, TERMINATE_STREAM))
            self._closed()

    def _closed(self) -> None:
        self.open = False
        for cb in self.on_close:
            cb()
        self.on_close.clear()


class Connection:
    def __init__(self, sock: socket.socket, server: IpcServer) -> None:
        self.sock = sock
        self.server = server
        self.component: str | None = None
        self.streams: dict[int, Stream] = {}
        self._send_lock = threading.Lock()
        self.alive = True

    def send(self, data: bytes) -> bool:
        with self._send_lock:
            if not self.alive:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.alive = False
                return False

    def send_shape(self, stream_id: int, shape: rpc.Shape, terminate: bool) -> bool:
        error = isinstance(shape, rpc.ErrorShape)
        mtype = MessageType.APPLICATION_ERROR if error else MessageType.APPLICATION_MESSAGE
        flags = TERMINATE_STREAM if (terminate or error) else 0
        payload = json.dumps(shape._to_payload()).encode()
        return self.send(rpc_message(mtype, stream_id, flags, payload, **{":content-type": JSON,
                                                                          "service-model-type": shape._model_name()}))

    def run(self) -> None:
        decoder = Decoder()
        try:
            while self.alive:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in decoder.feed(data):
                    self._on_message(msg)
        except (OSError, FrameError) as exc:
            log.debug("fake nucleus: connection ended: %s", exc)
        finally:
            self.alive = False
            for s in list(self.streams.values()):
                s._closed()
            self.streams.clear()
            self.sock.close()

    def _on_message(self, msg: Message) -> None:
        mt = msg.message_type
        if mt is MessageType.CONNECT:
            self._on_connect(msg)
        elif mt is MessageType.PING:
            self.send(rpc_message(MessageType.PING_RESPONSE, 0))
        elif self.component is None:
            self.send(rpc_message(MessageType.PROTOCOL_ERROR, 0))
        elif mt is MessageType.APPLICATION_MESSAGE:
            self._on_application(msg)

    def _on_connect(self, msg: Message) -> None:
        try:
            token = json.loads(msg.payload or b"{}").get("authToken")
        except ValueError:
            token = None
        self.component = self.server.authenticate(token)
        flags = CONNECTION_ACCEPTED if self.component else 0
        self.send(rpc_message(MessageType.CONNECT_ACK, 0, flags))
        self.server.record_connect(self.component, token)

    def _on_application(self, msg: Message) -> None:
        sid = msg.stream_id
        stream = self.streams.get(sid)
        if stream is not None:
            if msg.flags & TERMINATE_STREAM:  # the client closed a subscription
                self.streams.pop(sid, None)
                stream._closed()
            return
        op_name = msg.headers.get("operation")
        op = OPERATIONS.get(str(op_name))
        assert self.component is not None
        stream = Stream(sid, str(op_name), self, self.component)
        if op is None:
            self.send_shape(sid, model.ServiceError(message=f"unknown operation {op_name}"), terminate=True)
            return
        req_type = op._request_type()
        if msg.headers.get("service-model-type") != req_type._model_name():
            self.send_shape(sid, model.ServiceError(message="wrong service-model-type"), terminate=True)
            return
        stream.request = req_type._from_payload(json.loads(msg.payload or b"{}"))
        streaming = op._response_stream_type() is not None
        if streaming:
            self.streams[sid] = stream
        try:
            response, after = self.server.handle(stream, stream.request)
        except rpc.ErrorShape as err:
            self.streams.pop(sid, None)
            self.send_shape(sid, err, terminate=True)
            return
        self.send_shape(sid, response, terminate=not streaming)
        if after is not None:
            after()


Handler = Callable[[Stream, Any], "tuple[rpc.Shape, Callable[[], None] | None]"]


class IpcServer:
    """Accepts connections on a Unix socket; ``handle``/``authenticate`` come from the nucleus."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(16)
        self._threads: list[threading.Thread] = []
        self._conns: list[Connection] = []
        self._stopping = False

    def authenticate(self, token: str | None) -> str | None:
        raise NotImplementedError

    def record_connect(self, component: str | None, token: str | None) -> None:
        raise NotImplementedError

    def handle(self, stream: Stream, request: Any) -> tuple[rpc.Shape, Callable[[], None] | None]:
        raise NotImplementedError

    def start(self) -> None:
        t = threading.Thread(target=self._accept, name="fake-nucleus-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            conn = Connection(sock, self)
            self._conns.append(conn)
            t = threading.Thread(target=conn.run, name="fake-nucleus-conn", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for c in self._conns:
            c.alive = False
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(5)
