#!/usr/bin/python3
"""A TCP relay that adds a fixed delay in each direction (these machines have no
netem): listens on --listen, forwards to --target, holding every chunk for --delay-ms
before passing it on, in order.

Usage: delay_relay.py --listen PORT --target HOST:PORT --delay-ms 50
"""
import argparse
import asyncio


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await queue.put((loop.time() + delay, data))
    finally:
        await queue.put((0, None))
        await task


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-ms", type=float, default=50)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    delay = args.delay_ms / 1000

    async def handle(cr, cw):
        try:
            tr, tw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, tw, delay), pump(tr, cw, delay), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
