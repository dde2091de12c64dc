#!/usr/bin/env python3
"""Log in to the sandbox's mail server with a ready SASL string, the way a script would.

The SASL string is what `oauth2mail xoauth2` or `oauth2mail oauthbearer` printed (base64). Only the
Python standard library is used: imaplib, poplib, smtplib.

usage: mailcheck.py imap|pop3|smtp XOAUTH2|OAUTHBEARER --port N --sasl B64
                    [--host H] [--tls ssl|starttls|plain] [--ca FILE]
                    [--expect TEXT]                      (imap, pop3: message 1 must contain it)
                    [--send FROM TO SUBJECT]             (smtp: send one message)

Exit 0 when the server accepted the login (and the check passed), 1 when it refused it (its
error challenge and final answer are printed), 2 on usage errors. Timeouts: 15 s per operation.
"""
import argparse
import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
import sys

TIMEOUT = 15  # seconds for connect and each reply


def refused(what, detail):
    print(f"refused: {what}: {detail}")
    sys.exit(1)


def tls_context(ca):
    return ssl.create_default_context(cafile=ca)


def decode_challenge(raw):
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return raw


def imap(a, payload):
    ctx = tls_context(a.ca)
    if a.tls == "ssl":
        conn = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=ctx, timeout=TIMEOUT)
    else:
        conn = imaplib.IMAP4(a.host, a.port, timeout=TIMEOUT)
        if a.tls == "starttls":
            conn.starttls(ssl_context=ctx)
    challenges = []

    def answer(challenge):
        # first call: empty continuation -> the SASL string; later calls: the server's error
        # challenge -> the mechanism's "abort" answer (RFC 7628: 0x01; XOAUTH2: empty)
        if not challenges and not challenge:
            challenges.append(b"")
            return payload
        challenges.append(challenge)
        return b"\x01" if a.mech == "OAUTHBEARER" else b""

    try:
        conn.authenticate(a.mech, answer)
    except imaplib.IMAP4.error as e:
        refused("IMAP AUTHENTICATE", f"challenge {[c.decode(errors='replace') for c in challenges[1:]]} final {e}")
    _, count = conn.select("INBOX", readonly=True)
    _, data = conn.fetch("1", "(BODY.PEEK[])")
    message = data[0][1].decode(errors="replace") if data and data[0] else ""
    conn.logout()
    return int(count[0]), message


def pop3(a, payload):
    if a.tls == "ssl":
        conn = poplib.POP3_SSL(a.host, a.port, context=tls_context(a.ca), timeout=TIMEOUT)
    else:
        conn = poplib.POP3(a.host, a.port, timeout=TIMEOUT)
        if a.tls == "starttls":
            conn.stls(context=tls_context(a.ca))
    # RFC 1734 AUTH: mechanism first, the base64 line after the server's "+" continuation
    try:
        reply = conn._shortcmd(f"AUTH {a.mech}")
    except poplib.error_proto as e:
        reply = e.args[0]
    if not reply.startswith(b"+"):
        refused("POP3 AUTH", reply)
    conn._putcmd(base64.b64encode(payload).decode())
    reply = conn._getline()[0]
    if reply.startswith(b"+ ") or reply == b"+":
        challenge = decode_challenge(reply[2:].decode())
        conn._putcmd("AQ==" if a.mech == "OAUTHBEARER" else "")
        refused("POP3 AUTH", f"challenge {challenge} final {conn._getline()[0]}")
    if not reply.startswith(b"+OK"):
        refused("POP3 AUTH", reply)
    count, _ = conn.stat()
    message = b"\n".join(conn.retr(1)[1]).decode(errors="replace") if count else ""
    conn.quit()
    return count, message


def smtp(a, payload):
    if a.tls == "ssl":
        conn = smtplib.SMTP_SSL(a.host, a.port, context=tls_context(a.ca), timeout=TIMEOUT)
    else:
        conn = smtplib.SMTP(a.host, a.port, timeout=TIMEOUT)
        if a.tls == "starttls":
            conn.starttls(context=tls_context(a.ca))
    conn.ehlo()
    # mechanism first, SASL string on the 334 continuation: long tokens would overflow the
    # server's command line limit as an initial response (RFC 4954 section 4)
    code, msg = conn.docmd("AUTH", a.mech)
    if code != 334:
        refused("SMTP AUTH", f"{code} {msg}")
    code, msg = conn.docmd(base64.b64encode(payload).decode())
    if code == 334:
        challenge = decode_challenge(msg.decode())
        code, msg = conn.docmd("AQ==" if a.mech == "OAUTHBEARER" else "")
        refused("SMTP AUTH", f"challenge {challenge} final {code} {msg.decode()}")
    if code != 235:
        refused("SMTP AUTH", f"{code} {msg}")
    if a.send:
        sender, rcpt, subject = a.send
        conn.sendmail(sender, [rcpt], f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nsent by mailcheck.py\r\n")
    conn.quit()
    return 0, ""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("proto", choices=["imap", "pop3", "smtp"])
    p.add_argument("mech", choices=["XOAUTH2", "OAUTHBEARER"])
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", choices=["ssl", "starttls", "plain"], default="ssl")
    p.add_argument("--ca")
    p.add_argument("--sasl", required=True, help="base64 SASL string (oauth2mail xoauth2/oauthbearer output)")
    p.add_argument("--expect")
    p.add_argument("--send", nargs=3, metavar=("FROM", "TO", "SUBJECT"))
    a = p.parse_args()
    try:
        payload = base64.b64decode(a.sasl.strip(), validate=True)
    except ValueError as e:
        refused("local", f"the SASL string is not base64: {e}")
    socket.setdefaulttimeout(TIMEOUT)
    count, message = {"imap": imap, "pop3": pop3, "smtp": smtp}[a.proto](a, payload)
    if a.proto != "smtp":
        subject = next((l for l in message.splitlines() if l.lower().startswith("subject:")), "(no subject)")
        print(f"{a.proto} {a.mech}: logged in, {count} message(s); message 1 {subject}")
        if a.expect and a.expect not in message:
            print(f"message 1 does not contain {a.expect!r}")
            sys.exit(1)
    else:
        print(f"smtp {a.mech}: logged in" + (f", sent {a.send[2]!r}" if a.send else ""))


if __name__ == "__main__":
    main()
