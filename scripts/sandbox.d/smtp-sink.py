#!/usr/bin/env python3
"""SMTP sink for the oauth2mail sandbox (stdlib asyncio only): Dovecot's submission_relay_host.
Accepts everything from 127.0.0.1 and stores each message as <dir>/<n>.eml with an
envelope header block (X-Sink-Mail-From / X-Sink-Rcpt-To). No AUTH, no TLS.
Usage: smtp-sink.py PORT DIR
"""
import asyncio
import os
import sys
import time

PORT = int(sys.argv[1])
OUTDIR = sys.argv[2]
os.makedirs(OUTDIR, exist_ok=True)
COUNT = [0]


async def handle(reader, writer):
    def send(line):
        writer.write((line + "\r\n").encode())

    send("220 sink.example.test ESMTP sink")
    mail_from, rcpts = None, []
    while True:
        raw = await reader.readline()
        if not raw:
            break
        line = raw.decode(errors="replace").rstrip("\r\n")
        cmd = line[:4].upper()
        if cmd in ("EHLO", "LHLO"):
            send("250-sink.example.test")
            send("250-8BITMIME")
            send("250-SIZE 104857600")
            send("250 PIPELINING")
        elif cmd == "HELO":
            send("250 sink.example.test")
        elif cmd == "MAIL":
            mail_from, rcpts = line[10:].strip(), []
            send("250 2.1.0 OK")
        elif cmd == "RCPT":
            rcpts.append(line[8:].strip())
            send("250 2.1.5 OK")
        elif cmd == "DATA":
            send("354 go ahead")
            await writer.drain()
            data = bytearray()
            while True:
                l = await reader.readline()
                if not l or l in (b".\r\n", b".\n"):
                    break
                if l.startswith(b".."):
                    l = l[1:]
                data += l
            COUNT[0] += 1
            name = os.path.join(OUTDIR, "%d-%d.eml" % (int(time.time() * 1000), COUNT[0]))
            with open(name + ".tmp", "wb") as f:
                f.write(("X-Sink-Mail-From: %s\r\nX-Sink-Rcpt-To: %s\r\n" % (mail_from, ", ".join(rcpts))).encode())
                f.write(data)
            os.replace(name + ".tmp", name)
            send("250 2.0.0 queued as %d" % COUNT[0])
        elif cmd == "RSET":
            mail_from, rcpts = None, []
            send("250 2.0.0 OK")
        elif cmd == "NOOP":
            send("250 2.0.0 OK")
        elif cmd == "QUIT":
            send("221 2.0.0 bye")
            await writer.drain()
            break
        else:
            send("502 5.5.2 command not implemented")
        await writer.drain()
    writer.close()


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", PORT)
    print("SINK_PORT=%d" % srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
