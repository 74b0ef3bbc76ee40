"""The HTTP/1.1 response reader the bench load generators share (loopback and test LAN only)."""


def read_response(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed without response")
    status = int(line.split()[1])
    length, chunked, close = None, False, False
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            close = True
    body = b""
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16)
            chunk = f.read(size + 2)
            if size == 0:
                break
            body += chunk[:size]
    elif length is not None:
        body = f.read(length)
    else:
        body = f.read()
        close = True
    return status, body.decode("latin-1"), close
