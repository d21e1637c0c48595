"""AWS event-stream framing, written from the format (not from any server code):

    total_length u32 | headers_length u32 | prelude_crc u32 (CRC32 of the first 8 bytes)
    headers: name_len u8, name, type u8, value (typed)
    payload
    message_crc u32 (CRC32 of everything before it)

All integers big-endian; CRC32 is zlib's (IEEE). The RPC layer rides in headers:
``:message-type`` / ``:message-flags`` / ``:stream-id`` (int32), ``operation`` (string) on the first
message of a stream, ``service-model-type`` and ``:content-type`` on application messages.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class HeaderType(IntEnum):
    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


class MessageType(IntEnum):
    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


CONNECTION_ACCEPTED = 0x1
TERMINATE_STREAM = 0x2
PRELUDE = 12
MAX_MESSAGE = 16 * 1024 * 1024


class FrameError(Exception):
    """The byte stream is not valid event-stream framing (bad CRC, bad header type, too large)."""


@dataclass(slots=True)
class Message:
    headers: dict[str, Any]
    payload: bytes = b""
    header_types: dict[str, HeaderType] = field(default_factory=dict)

    @property
    def message_type(self) -> MessageType:
        return MessageType(self.headers.get(":message-type", 0))

    @property
    def flags(self) -> int:
        return int(self.headers.get(":message-flags", 0))

    @property
    def stream_id(self) -> int:
        return int(self.headers.get(":stream-id", 0))


def _encode_header(name: str, value: Any) -> bytes:
    raw = name.encode()
    out = struct.pack(">B", len(raw)) + raw
    if isinstance(value, bool):
        return out + struct.pack(">B", HeaderType.BOOL_TRUE if value else HeaderType.BOOL_FALSE)
    if isinstance(value, int):
        return out + struct.pack(">Bi", HeaderType.INT32, value)
    if isinstance(value, bytes):
        return out + struct.pack(">BH", HeaderType.BYTE_BUF, len(value)) + value
    if isinstance(value, uuid.UUID):
        return out + struct.pack(">B", HeaderType.UUID) + value.bytes
    text = str(value).encode()
    return out + struct.pack(">BH", HeaderType.STRING, len(text)) + text


def encode(headers: dict[str, Any], payload: bytes = b"") -> bytes:
    hdr = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = PRELUDE + len(hdr) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hdr))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + hdr + payload
    return body + struct.pack(">I", zlib.crc32(body))


def rpc_message(message_type: MessageType, stream_id: int, flags: int = 0, payload: bytes = b"",
                **extra: Any) -> bytes:
    headers: dict[str, Any] = {":message-type": int(message_type), ":message-flags": flags, ":stream-id": stream_id}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return encode(headers, payload)


def _decode_headers(buf: bytes) -> tuple[dict[str, Any], dict[str, HeaderType]]:
    headers: dict[str, Any] = {}
    types: dict[str, HeaderType] = {}
    i = 0
    while i < len(buf):
        n = buf[i]
        name = buf[i + 1:i + 1 + n].decode()
        i += 1 + n
        try:
            t = HeaderType(buf[i])
        except ValueError as exc:
            raise FrameError(f"header {name!r} has unknown type {buf[i]}") from exc
        i += 1
        fixed = {HeaderType.BYTE: ">b", HeaderType.INT16: ">h", HeaderType.INT32: ">i", HeaderType.INT64: ">q",
                 HeaderType.TIMESTAMP: ">q"}
        if t in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
            value: Any = t is HeaderType.BOOL_TRUE
        elif t in fixed:
            size = struct.calcsize(fixed[t])
            value = struct.unpack(fixed[t], buf[i:i + size])[0]
            i += size
        elif t is HeaderType.UUID:
            value = uuid.UUID(bytes=buf[i:i + 16])
            i += 16
        else:
            (length,) = struct.unpack(">H", buf[i:i + 2])
            raw = buf[i + 2:i + 2 + length]
            value = raw.decode() if t is HeaderType.STRING else raw
            i += 2 + length
        headers[name] = value
        types[name] = t
    return headers, types


class Decoder:
    """Feed bytes as they arrive; take whole, CRC-checked messages out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buf.extend(data)
        out: list[Message] = []
        while len(self._buf) >= PRELUDE:
            total, hlen, pcrc = struct.unpack(">III", self._buf[:PRELUDE])
            if zlib.crc32(bytes(self._buf[:8])) != pcrc:
                raise FrameError("prelude CRC mismatch")
            if total > MAX_MESSAGE or total < PRELUDE + 4 or hlen > total - PRELUDE - 4:
                raise FrameError(f"implausible message length {total} (headers {hlen})")
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            (mcrc,) = struct.unpack(">I", frame[-4:])
            if zlib.crc32(frame[:-4]) != mcrc:
                raise FrameError("message CRC mismatch")
            headers, types = _decode_headers(frame[PRELUDE:PRELUDE + hlen])
            out.append(Message(headers, frame[PRELUDE + hlen:-4], types))
        return out
