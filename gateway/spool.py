"""The gateway's local spool: where beacons go, durably, while Kafka cannot take them.

Records are appended to segment files (`<n>.seg`) as frames `[len u32][crc32 u32][payload]`,
where the payload is `[topic len u16][key len u16][topic][key][value]`. Appends are group-committed:
every append waiting at that moment is written and fsynced once, and only then does each caller's
await return (so the 200 goes out after the fsync). A drainer publishes the oldest records first and
records its position in `cursor` (fsynced) after Kafka acknowledges them; drained segments are
deleted. A torn last frame (a crash mid-write) fails its CRC and is dropped: it was never
acknowledged to any client.

Writes, reads and acknowledgements run in threads (`asyncio.to_thread`) and are serialised by one
lock, which also guards the record count: the chaos suite found a drain that emptied the spool
deleting the segment an append was being written to at that moment (the hit answered 200, then
lost), and an unguarded count that drifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FRAME = struct.Struct("<II")
HEADER = struct.Struct("<HH")
SEGMENT_BYTES = 16 * 1024 * 1024


class SpoolFull(RuntimeError):
    """The spool holds `max_bytes` already: the record was not kept (counted and logged)."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes


def encode_record(record: Record) -> bytes:
    topic = record.topic.encode()
    payload = HEADER.pack(len(topic), len(record.key)) + topic + record.key + record.value
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def read_frames(data: bytes, start: int = 0) -> Iterator[tuple[int, Record]]:
    """Yield (end offset, record) for every whole, intact frame from `start`."""
    pos = start
    while pos + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, pos)
        payload = data[pos + FRAME.size : pos + FRAME.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return  # a torn tail: never acknowledged
        topic_len, key_len = HEADER.unpack_from(payload)
        body = payload[HEADER.size :]
        pos += FRAME.size + length
        yield (
            pos,
            Record(
                body[:topic_len].decode(),
                body[topic_len : topic_len + key_len],
                body[topic_len + key_len :],
            ),
        )


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._cursor_path = directory / "cursor"
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flushing = False
        self._lock = threading.Lock()  # segment files, cursor and `records`
        segments = self._segments()
        self._active = segments[-1] if segments else 1
        self.records = sum(1 for _ in self._unread())

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.seg"))

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}.seg"

    def size_bytes(self) -> int:
        total = 0
        for path in self.directory.glob("*.seg"):
            with contextlib.suppress(FileNotFoundError):  # drained and deleted meanwhile
                total += path.stat().st_size
        return total

    def full(self, headroom: int = 65536) -> bool:
        """No room left for one more hit of up to `headroom` bytes."""
        return self.size_bytes() + headroom > self.max_bytes

    def cursor(self) -> tuple[int, int]:
        if not self._cursor_path.exists():
            segments = self._segments()
            return (segments[0] if segments else 1), 0
        segment, _, offset = self._cursor_path.read_text().partition(":")
        return int(segment), int(offset)

    async def append(self, record: Record) -> None:
        """Return once `record` is on disk (fsynced); raise `SpoolFull` when there is no room."""
        frame = encode_record(record)
        if self.size_bytes() + len(frame) > self.max_bytes:
            raise SpoolFull(f"spool at {self.directory} is full ({self.max_bytes} bytes)")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((frame, done))
        if not self._flushing:
            self._flushing = True
            try:
                while self._pending:
                    batch, self._pending = self._pending, []
                    try:
                        data = b"".join(f for f, _ in batch)
                        await asyncio.to_thread(self._write, data, len(batch))
                    except OSError as exc:
                        for _, future in batch:
                            future.set_exception(exc)
                        continue
                    for _, future in batch:
                        future.set_result(None)
            finally:
                self._flushing = False
        await done

    def _write(self, data: bytes, count: int) -> None:
        with self._lock:
            path = self._path(self._active)
            if path.exists() and path.stat().st_size + len(data) > SEGMENT_BYTES:
                self._active += 1
                path = self._path(self._active)
            with path.open("ab") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            self.records += count

    def _unread(self) -> Iterator[tuple[int, int, Record]]:
        """(segment, end offset, record) of every record not yet drained, oldest first."""
        first, offset = self.cursor()
        for segment in self._segments():
            if segment < first:
                continue
            data = self._path(segment).read_bytes()
            for end, record in read_frames(data, offset if segment == first else 0):
                yield segment, end, record

    def peek(self, limit: int) -> list[tuple[int, int, Record]]:
        out = []
        with self._lock:
            for item in self._unread():
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    def acknowledge(self, segment: int, offset: int, count: int) -> None:
        """Kafka has every record up to `segment`@`offset`: move the cursor, drop old segments.

        Under the lock, `records` counts every record written and not acknowledged, so when it
        is 0 the active segment holds nothing unread: it is deleted and the next write starts a
        new one.
        """
        with self._lock:
            tmp = self._cursor_path.with_suffix(".tmp")
            with tmp.open("w") as out:
                out.write(f"{segment}:{offset}")
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self._cursor_path)
            self.records = max(self.records - count, 0)
            for old in self._segments():
                if old < segment:
                    self._path(old).unlink()
            if self.records == 0 and segment == self._active:
                self._path(segment).unlink(missing_ok=True)
                self._cursor_path.unlink(missing_ok=True)
                self._active += 1
