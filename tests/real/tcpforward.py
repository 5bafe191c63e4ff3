#!/usr/bin/env python3
"""A plain TCP forwarder: what a Kafka client gets from an L4 proxy.

    tcpforward.py --listen IP:PORT --target IP:PORT

Every accepted connection is piped byte for byte to the target.  The seed
scenario uses it to show the problem kafka-edge solves: a client can bootstrap
through a port forward, but the Metadata it receives names the brokers'
internal addresses, which the client cannot reach.  Prints "listening" on
stdout when ready; runs until SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    thost, tport = args.target.rsplit(":", 1)

    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(thost, int(tport)), timeout=10
            )
        except (OSError, asyncio.TimeoutError):
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, lhost, int(lport))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write("listening %s -> %s\n" % (args.listen, args.target))
    sys.stdout.flush()
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
