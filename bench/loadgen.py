"""A small asyncio HTTP/1.1 load generator for signed Twilio webhooks.

Raw keep-alive connections instead of an HTTP client library: on a 2-core
host the client's own cost must stay well below the server's, or a fast
server (the bare FastAPI app of bench_ingest) measures the client. Requests
are built and signed (twilio's `RequestValidator` algorithm, via
`sms.signature.sign`) before the clock starts.

Two modes:

- closed loop (`run_closed`): `concurrency` connections, each sends its next
  request as soon as the previous answer is in;
- open loop (`run_open`): requests start at a fixed rate whatever the
  answers do; each one's latency counts from its scheduled start, so a
  server that falls behind is charged for the queue (no coordinated omission).

Each result keeps the request's index, HTTP status (0 when the connection
failed: nothing was acknowledged), and start / end times on `time.monotonic()`,
which is one clock for every process of the host.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from sms.signature import sign

AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
HOTLINE = "+8657000000000"

_sids = itertools.count(1)


def new_sid(prefix: str = "SMb") -> str:
    """A MessageSid of Twilio's shape (34 chars), unique within this process run."""
    return f"{prefix}{time.time_ns() % 10**12:012d}{next(_sids):019d}"[:34]


@dataclass(frozen=True)
class Webhook:
    """One prepared inbound SMS webhook."""

    sid: str
    sender: str
    body: str
    payload: bytes  # the whole HTTP request


@dataclass
class Result:
    index: int
    status: int  # 0: connection failed or closed before an answer
    start: float  # monotonic; the scheduled start in open-loop mode
    end: float

    @property
    def latency(self) -> float:
        return self.end - self.start


def webhook(
    base_url: str,
    *,
    sender: str,
    body: str,
    sid: str | None = None,
    public_url: str | None = None,
    auth_token: str = AUTH_TOKEN,
) -> Webhook:
    """A signed `POST /sms/inbound` as Twilio sends it; signed for `public_url`
    (the server's GRIDLINE_PUBLIC_URL), default `base_url`."""
    sid = sid or new_sid()
    params = {
        "ToCountry": "CN",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": HOTLINE,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    path = "/sms/inbound"
    signature = sign(
        auth_token=auth_token, url=(public_url or base_url).rstrip("/") + path, params=params
    )
    form = urlencode(params).encode()
    host = urlsplit(base_url).netloc
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\nX-Twilio-Signature: {signature}\r\n"
        "User-Agent: TwilioProxy/1.1\r\n\r\n"
    )
    return Webhook(sid=sid, sender=sender, body=body, payload=head.encode() + form)


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.stale_retries = 0

    async def request(self, payload: bytes, timeout: float) -> int:
        """Send one request, read its answer; the HTTP status (0 on a failure).

        A kept-alive connection the server closed while idle (its keep-alive
        timeout) fails at once; like any HTTP client (and Twilio), send again
        once on a new connection. A timeout is never retried: it counts."""
        reused = self.writer is not None
        for attempt in (1, 2):
            try:
                return await asyncio.wait_for(self._request(payload), timeout)
            except TimeoutError:
                self.close()
                return 0
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.close()
                if not (reused and attempt == 1):
                    return 0
                self.stale_retries += 1
        return 0

    async def _request(self, payload: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(payload)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


async def run_closed(
    base_url: str,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    timeout: float = 30.0,
    on_result: Callable[[Result], object] | None = None,
) -> list[Result]:
    """Send every request over `concurrency` keep-alive connections, as fast as answered;
    `on_result` sees each result as it comes (a fault test acts on the progress)."""
    host, port = _address(base_url)
    results: list[Result] = []
    counter = itertools.count()

    async def lane() -> None:
        conn = _Conn(host, port)
        try:
            while True:
                i = next(counter)
                if i >= len(requests):
                    return
                start = time.monotonic()
                status = await conn.request(requests[i], timeout)
                result = Result(i, status, start, time.monotonic())
                results.append(result)
                if on_result is not None:
                    outcome = on_result(result)
                    if asyncio.iscoroutine(outcome):
                        await outcome
        finally:
            conn.close()

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return sorted(results, key=lambda r: r.index)


async def run_open(
    base_url: str,
    requests: Sequence[bytes],
    *,
    rate: float,
    timeout: float = 30.0,
    max_connections: int = 512,
) -> list[Result]:
    """Start request i at t0 + i/rate; latency from that scheduled moment."""
    host, port = _address(base_url)
    idle: list[_Conn] = []
    results: list[Result] = []
    slots = asyncio.Semaphore(max_connections)

    async def one(i: int, scheduled: float) -> None:
        async with slots:
            conn = idle.pop() if idle else _Conn(host, port)
            status = await conn.request(requests[i], timeout)
            results.append(Result(i, status, scheduled, time.monotonic()))
            idle.append(conn)

    tasks = []
    t0 = time.monotonic() + 0.05
    for i in range(len(requests)):
        scheduled = t0 + i / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule itself, not a synchronisation
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return sorted(results, key=lambda r: r.index)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]
