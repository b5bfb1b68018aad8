#!/usr/bin/env python3
"""A TCP proxy that adds a fixed one-way delay in each direction.

This kernel has tbf (bandwidth) but no netem (latency), so the emulated links of `tools/wan/run.sh`
get their round-trip time here: every chunk read from one side is written to the other side
`--delay-ms` later, in order, in both directions, so one round trip through the proxy costs
`2 * delay` on top of the link. The queue per direction is bounded (`--max-queue` chunks), so a
slow link (tbf) pushes back on the sender instead of filling this process's memory.

It accepts connections for `--seconds` at most and then exits, so a forgotten proxy does not
outlive the measurement.
"""

import argparse
import asyncio
import time


async def pump(reader, writer, delay, max_queue):
    """Copies reader -> writer, each chunk released `delay` seconds after it was read."""
    queue = asyncio.Queue(maxsize=max_queue)

    async def read_side():
        while True:
            try:
                data = await reader.read(1 << 20)
            except ConnectionError:
                # A peer that resets its socket (it closed with bytes unread) has still sent
                # what is queued: deliver that, then end the stream, rather than drop it (the
                # server would miss the client's last message).
                data = b""
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read_side(), write_side())
    except (ConnectionError, asyncio.IncompleteReadError):
        pass


async def handle(client_reader, client_writer, upstream, delay, max_queue):
    host, port = upstream
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, up_writer, delay, max_queue),
        pump(up_reader, client_writer, delay, max_queue),
    )
    for w in (up_writer, client_writer):
        w.close()


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, type=host_port, help="HOST:PORT to accept on")
    ap.add_argument("--upstream", required=True, type=host_port, help="HOST:PORT to forward to")
    ap.add_argument("--delay-ms", required=True, type=float, help="one-way delay per direction")
    ap.add_argument("--max-queue", type=int, default=256, help="chunks queued per direction")
    ap.add_argument("--seconds", type=float, default=4 * 3600, help="exit after this long")
    args = ap.parse_args()
    delay = args.delay_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args.upstream, delay, args.max_queue), *args.listen
    )
    print(f"delay proxy {args.listen[0]}:{args.listen[1]} -> "
          f"{args.upstream[0]}:{args.upstream[1]}, {args.delay_ms} ms each way", flush=True)
    async with server:
        try:
            await asyncio.wait_for(server.serve_forever(), timeout=args.seconds)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
