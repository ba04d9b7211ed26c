"""Forward TCP from this machine's loopback into a network namespace.

python relay.py NETNS HOST:PORT binds 127.0.0.1 on a free port here, prints the port, then enters
NETNS, so that every connection it makes to HOST:PORT starts inside that namespace. Tests on the
host reach servers in namespaces through it, without a route from the host into them.
"""

from __future__ import annotations

import asyncio
import ctypes
import socket
import sys

CLONE_NEWNET = 0x40000000


def enter(netns: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{netns}") as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def serve(listener: socket.socket, host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, target_writer), pipe(target_reader, writer))

    server = await asyncio.start_server(handle, sock=listener)
    async with server:
        await server.serve_forever()


def main(netns: str, target: str) -> None:
    host, _, port = target.rpartition(":")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    enter(netns)  # the bound socket stays on the host's loopback; new ones are in netns
    print(listener.getsockname()[1], flush=True)
    asyncio.run(serve(listener, host, int(port)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
