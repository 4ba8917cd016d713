#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A minimal HTTP CONNECT proxy for tests: tunnels bytes both ways and logs
each tunnel it opens ("CONNECT host:port" and the Proxy-Authorization it
got) to the log file. Writes its port to PORT_FILE once listening.

    connect-proxy.py PORT_FILE LOG_FILE
"""
import socket
import sys
import threading


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(conn, log):
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(4096)
        if not data:
            conn.close()
            return
        head += data
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    auth = next((l.split(":", 1)[1].strip() for l in lines[1:]
                 if l.lower().startswith("proxy-authorization:")), "-")
    if method != "CONNECT":
        conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        conn.close()
        return
    host, port = target.rsplit(":", 1)
    try:
        upstream = socket.create_connection((host.strip("[]"), int(port)))
    except OSError:
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        conn.close()
        return
    with open(log, "a") as f:
        f.write(f"CONNECT {target} auth={auth}\n")
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()


def main():
    port_file, log = sys.argv[1], sys.argv[2]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, log), daemon=True).start()


if __name__ == "__main__":
    main()
