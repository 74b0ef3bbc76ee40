"""Bounded load through Caddy on loopback, counted per kind of client:
  fresh      one request per connection (Connection: close)
  keepalive  one connection reused, requests sent back to back (a new one only after a failure)
  long       one request per connection to a 2 s endpoint (/cgi-bin/slow?s=2)
Prints requests, failures and latency per kind. Stops on SIGINT or after 10 minutes.
Usage: load.py HOST_HEADER PORT WORKERS [fresh,keepalive,long]   (workers per kind)"""
import signal, socket, sys, threading, time

from http1 import read_response

host, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kinds = (sys.argv[4] if len(sys.argv) > 4 else "fresh").split(",")
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
lock = threading.Lock()
stats = {k: {"ok": 0, "non2xx": 0, "errors": 0, "lat": [], "why": {}} for k in kinds}


def record(kind, t, status=None, why=None):
    with lock:
        st = stats[kind]
        if why is not None:
            st["errors"] += 1
            st["why"][why] = st["why"].get(why, 0) + 1
        elif 200 <= status < 300:
            st["ok"] += 1
            st["lat"].append(time.perf_counter() - t)
        else:
            st["non2xx"] += 1


def one_shot(kind, path):
    while not stop.is_set():
        t = time.perf_counter()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=15)
            f = s.makefile("rb")
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            status, _, _ = read_response(f)
            s.close()
            record(kind, t, status)
        except (OSError, ValueError, IndexError) as e:
            record(kind, t, why=type(e).__name__ + ": " + str(e)[:60])
        if kind == "fresh":
            time.sleep(0.002)


def keepalive():
    s = f = None
    while not stop.is_set():
        t = time.perf_counter()
        try:
            if s is None:
                s = socket.create_connection(("127.0.0.1", port), timeout=15)
                f = s.makefile("rb")
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status, _, close = read_response(f)
            record("keepalive", t, status)
            if close:
                s.close()
                s = None
        except (OSError, ValueError, IndexError) as e:
            record("keepalive", t, why=type(e).__name__ + ": " + str(e)[:60])
            try:
                s.close()
            except Exception:
                pass
            s = None


targets = {"fresh": lambda: one_shot("fresh", "/"), "keepalive": keepalive,
           "long": lambda: one_shot("long", "/cgi-bin/slow?s=2")}
start = time.time()
threads = [threading.Thread(target=targets[k]) for k in kinds for _ in range(workers)]
for t in threads:
    t.start()
while not stop.is_set() and time.time() - start < 600:
    time.sleep(0.1)
stop.set()
for t in threads:
    t.join()
elapsed = time.time() - start
for k in kinds:
    st = stats[k]
    lat = sorted(st["lat"])
    p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1000 if lat else 0
    why = "; ".join(f"{n}× {w}" for w, n in sorted(st["why"].items(), key=lambda x: -x[1]))
    print(f"{k:<9} requests {st['ok'] + st['non2xx'] + st['errors']:>6} in {elapsed:.1f}s; ok {st['ok']}; "
          f"non-2xx {st['non2xx']}; failed {st['errors']}; p50 {p(0.5):.1f} ms; p99 {p(0.99):.1f} ms"
          + (f"; {why}" if why else ""))
