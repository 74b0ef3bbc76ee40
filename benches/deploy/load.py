"""Bounded load through Caddy on loopback: requests/s, errors and p99 latency.
Stops on SIGINT or after 10 minutes / 1 000 000 requests, whichever comes first."""
import signal, socket, sys, threading, time
host, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
lat, errors, non2xx, lock = [], [0], [0], threading.Lock()
def worker():
    n = 0
    while not stop.is_set() and n < 1_000_000 // workers:
        n += 1
        t = time.perf_counter()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            s.close()
            ok = data.startswith(b"HTTP/1.1 2")
            with lock:
                lat.append(time.perf_counter() - t)
                if not ok: non2xx[0] += 1
        except OSError:
            with lock: errors[0] += 1
start = time.time()
threads = [threading.Thread(target=worker) for _ in range(workers)]
for t in threads: t.start()
while not stop.is_set() and time.time() - start < 600:
    time.sleep(0.1)
stop.set()
for t in threads: t.join()
elapsed = time.time() - start
lat.sort()
p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
print(f"requests {len(lat)} in {elapsed:.1f}s = {len(lat)/elapsed:.0f} req/s; non-2xx {non2xx[0]}; connection errors {errors[0]}; p50 {lat[len(lat)//2]*1000:.1f} ms; p99 {p99:.1f} ms")
