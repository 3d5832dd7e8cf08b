"""Hit counter like katacoda/redis-node-docker-example: every GET does INCR in Redis at
host ``redis`` and answers ``Total requests: N``. python3-minimal has no http.server,
so HTTP and RESP are spoken over plain sockets."""

import contextlib
import os
import socket

REDIS_HOST = os.environ.get("REDIS_HOST", "redis")
KEY = "hits"


def incr() -> int:
    with socket.create_connection((REDIS_HOST, 6379), timeout=3) as conn:
        conn.sendall(f"*2\r\n$4\r\nINCR\r\n${len(KEY)}\r\n{KEY}\r\n".encode())
        reply = conn.recv(64).decode()
    if not reply.startswith(":"):
        raise RuntimeError(reply.strip())
    return int(reply[1:].strip())


def answer(conn: socket.socket) -> None:
    request = conn.recv(4096).decode(errors="replace")
    if not request.startswith("GET "):
        status, body = "405 Method Not Allowed", "GET only\n"
    elif request.split(" ")[1] == "/favicon.ico":
        status, body = "404 Not Found", "\n"
    else:
        try:
            status, body = "200 OK", f"Total requests: {incr()}\n"
        except Exception as exc:  # noqa: BLE001 - any Redis failure is a 500 for the client
            status, body = "500 Internal Server Error", f"Redis error: {exc}\n"
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    conn.sendall((head + "Connection: close\r\n\r\n" + body).encode())


def main() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 3000))
    server.listen(16)
    print("listening on :3000", flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                answer(conn)


if __name__ == "__main__":
    main()
