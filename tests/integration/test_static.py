"""static_dir through the real daemons: a gateway serves a directory of
files at / next to /sync, and nothing else.

  - GET and HEAD of files, index.html for a directory path, a 301 that
    adds a directory's '/', Content-Type from the extension,
    Content-Length, ETag, 304 on a matching If-None-Match (and 200 again
    once the file changed), Connection: close;
  - a hostile corpus of request paths (.., %2e%2e, %00, backslashes,
    absolute paths, hidden files, symbolic links to files and to
    directories outside, a FIFO, encoded slashes) never returns a byte of
    the files outside the directory and never leaves the daemon stuck;
  - the same Host rule as /sync (403 for a rebinding Host), 405 for other
    methods, 403 for a file over static_max_file_bytes, /healthz and
    /sync still answered as before;
  - a large file arrives whole while the client reads it slowly, and
    the gateway answers /healthz in the meantime;
  - without static_dir, the same paths are 404;
  - where the kernel has Landlock, all of it works in the sandbox that
    grants reading static_dir besides the state directory."""

import hashlib
import os
import socket
import time

from tvtest import Client, Stack, check, finish, http_raw, run, upgrade_head

SECRET = b"TOP-SECRET-OUTSIDE-STATIC-DIR"
BIG_BYTES = 6 * 1024 * 1024 + 123	# a large file: many refills
MAX_FILE = 8 * 1024 * 1024		# static_max_file_bytes of the test
SLOW_READ = 64 * 1024			# bytes the slow client takes at a time


def get(port, path, method="GET", host=None, extra=""):
    head = "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
        method, path, host or "127.0.0.1:%d" % port, extra)
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(head.encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data:
        return None, {}, b""
    h, _, body = data.partition(b"\r\n\r\n")
    lines = h.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def make_tree(root):
    """root/www (the static_dir) and, next to it, what must stay out."""
    www = os.path.join(root, "www")
    os.makedirs(os.path.join(www, "docs", "deep"))
    os.makedirs(os.path.join(root, "outside"))
    files = {
        "index.html": b"<!doctype html><title>home</title>\n",
        "app.js": b"console.log('app');\n",
        "style.css": b"body{}\n",
        "data.json": b"{\"a\":1}\n",
        "logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
        "blob": b"\x00\x01\x02",
        "empty.txt": b"",
        "docs/index.html": b"<p>docs</p>\n",
        "docs/deep/page.html": b"<p>deep</p>\n",
        "a b.txt": b"space\n",
        ".env": SECRET,
        "too-big.bin": b"x" * (MAX_FILE + 1),
    }
    for name, data in files.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(data)
    with open(os.path.join(www, "big.bin"), "wb") as f:
        f.write(os.urandom(BIG_BYTES))
    for name in ("secret.txt", "outside/secret.txt"):
        with open(os.path.join(root, name), "wb") as f:
            f.write(SECRET)
    with open(os.path.join(root, "outside", "index.html"), "wb") as f:
        f.write(SECRET)
    os.symlink(os.path.join(root, "secret.txt"), os.path.join(www, "link.txt"))
    os.symlink("../secret.txt", os.path.join(www, "rel-link.txt"))
    os.symlink(os.path.join(root, "outside"), os.path.join(www, "outdir"))
    os.symlink("index.html", os.path.join(www, "inner-link.html"))
    os.mkfifo(os.path.join(www, "fifo"))
    return www, files


HOSTILE = [
    "/../secret.txt", "/../../secret.txt", "/docs/../../secret.txt",
    "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/.%2e/secret.txt",
    "/%2e./secret.txt", "/docs/%2e%2e/%2e%2e/secret.txt",
    "/%2e%2e%2fsecret.txt", "/..%2fsecret.txt", "/docs%2f..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt", "/..%5csecret.txt", "/%5c..%5csecret.txt",
    "/..%5c..%5csecret.txt", "/index.html%00", "/secret.txt%00.html",
    "/%00/../secret.txt", "//secret.txt", "//etc/passwd", "///etc/passwd",
    "/%2fetc%2fpasswd", "/%2Fetc/passwd", "/.env", "/%2eenv", "/docs/.",
    "/docs/..", "/./index.html", "/link.txt", "/rel-link.txt",
    "/outdir/secret.txt", "/outdir/", "/outdir", "/outdir/index.html",
    "/fifo", "/missing", "/docs/missing.html", "/%zz", "/%", "/a%2",
    "/" + "a/" * 40 + "x", "/" + "b" * 600,
]
# Request lines the HTTP parser itself refuses (400) before static.c.
HOSTILE_RAW = [
    "/..\\secret.txt", "/\\secret.txt", "\\secret.txt", "secret.txt",
    "/a b", "/index.html\x00", "http://127.0.0.1/../secret.txt", "*",
    "/#frag",
]


def check_corpus(port):
    statuses = {}
    for p in HOSTILE + HOSTILE_RAW:
        try:
            status, _, body = get(port, p)
        except (OSError, ValueError, IndexError) as e:
            status, body = "error: %s" % e, b""
        statuses[p] = status
        if SECRET in body or status == 200:
            check(False, "hostile path %r: %s, %d bytes" % (p, status, len(body)))
    check(all(statuses[p] in (400, 404) for p in HOSTILE),
          "every hostile path is 400 or 404, no file outside is sent (%s)"
          % sorted(set(statuses[p] for p in HOSTILE), key=str))
    check(all(statuses[p] == 400 for p in HOSTILE_RAW),
          "request lines the parser refuses are 400 (%s)"
          % [(p, statuses[p]) for p in HOSTILE_RAW if statuses[p] != 400])


def check_files(port, www, files):
    for name, ctype in (("index.html", "text/html"), ("app.js", "text/javascript"),
                        ("style.css", "text/css"), ("data.json", "application/json"),
                        ("logo.svg", "image/svg+xml"), ("blob", "application/octet-stream"),
                        ("docs/deep/page.html", "text/html")):
        status, h, body = get(port, "/" + name)
        check(status == 200 and body == files[name]
              and h.get("content-type", "").startswith(ctype)
              and h.get("content-length") == str(len(files[name]))
              and h.get("connection") == "close",
              "GET /%s: 200, %s, Content-Length %d (%s %s)"
              % (name, ctype, len(files[name]), status, h.get("content-type")))
    status, h, body = get(port, "/")
    check(status == 200 and body == files["index.html"], "GET /: index.html")
    status, h, body = get(port, "/docs/")
    check(status == 200 and body == files["docs/index.html"], "GET /docs/: its index.html")
    status, h, body = get(port, "/docs")
    check(status == 301 and h.get("location") == "/docs/" and body == b"",
          "GET /docs: 301 to /docs/ (%s %s)" % (status, h.get("location")))
    status, h, body = get(port, "/a%20b.txt")
    check(status == 200 and body == files["a b.txt"], "percent-encoded name: a b.txt")
    status, h, body = get(port, "/empty.txt")
    check(status == 200 and body == b"" and h.get("content-length") == "0",
          "an empty file: 200, Content-Length 0")
    status, h, body = get(port, "/inner-link.html")
    check(status == 404, "a symbolic link inside the directory is not followed either")
    status, h, body = get(port, "/docs/deep/")
    check(status == 404, "a directory without index.html: 404, no listing")
    status, h, body = get(port, "/index.html?x=1&y=../../secret.txt")
    check(status == 200 and body == files["index.html"], "the query is ignored")

    # HEAD: the GET's headers, no body.
    status, h, body = get(port, "/app.js", method="HEAD")
    check(status == 200 and body == b"" and h.get("content-length") == str(len(files["app.js"]))
          and "etag" in h, "HEAD /app.js: 200, Content-Length and ETag, no body")

    # ETag and If-None-Match.
    _, h, _ = get(port, "/index.html")
    etag = h.get("etag", "")
    check(etag.startswith('"') and etag.endswith('"') and len(etag) > 2,
          "a strong quoted ETag (%s)" % etag)
    status, h2, body = get(port, "/index.html", extra="If-None-Match: %s\r\n" % etag)
    check(status == 304 and body == b"" and h2.get("etag") == etag,
          "If-None-Match with its ETag: 304, no body (%s)" % status)
    status, _, body = get(port, "/index.html", extra='If-None-Match: "x", W/%s\r\n' % etag)
    check(status == 304, "a weak match in a list: 304")
    status, _, body = get(port, "/index.html", method="HEAD",
                          extra="If-None-Match: %s\r\n" % etag)
    check(status == 304, "HEAD with a matching If-None-Match: 304")
    status, _, body = get(port, "/index.html", extra='If-None-Match: "other"\r\n')
    check(status == 200 and body == files["index.html"], "another ETag: 200 and the file")
    status, _, _ = get(port, "/index.html", extra="If-None-Match: %s\r\n" % ("x" * 400))
    check(status == 200, "an If-None-Match too long to keep: as if absent, 200")
    time.sleep(0.01)
    with open(os.path.join(www, "index.html"), "wb") as f:
        f.write(b"<!doctype html><title>changed</title>\n")
    status, h3, body = get(port, "/index.html", extra="If-None-Match: %s\r\n" % etag)
    check(status == 200 and body.endswith(b"changed</title>\n") and h3.get("etag") != etag,
          "the file changed: 200 with a new ETag")
    with open(os.path.join(www, "index.html"), "wb") as f:
        f.write(files["index.html"])

    # The rules shared with /sync, and the limits.
    status, _, body = get(port, "/index.html", host="evil.test")
    check(status == 403 and b"Host not allowed" in body, "a rebinding Host: 403")
    status, _, body = get(port, "/index.html", host="evil.test:%d" % port, method="HEAD")
    check(status == 403, "HEAD with a rebinding Host: 403")
    status, _, _ = http_raw(port, "GET /index.html HTTP/1.1\r\n\r\n")
    check(status == 403, "no Host: 403")
    status, h, _ = get(port, "/index.html", method="POST")
    check(status == 405 and h.get("allow") == "GET, HEAD", "POST: 405, Allow: GET, HEAD")
    status, _, _ = get(port, "/index.html", method="DELETE")
    check(status == 405, "DELETE: 405")
    status, _, body = get(port, "/too-big.bin")
    check(status == 403 and b"static_max_file_bytes" in body,
          "a file over static_max_file_bytes: 403 (%s)" % status)
    status, h, body = get(port, "/healthz")
    check(status == 200 and b"gatewayId" in body, "/healthz answers as before")
    status, _, _ = http_raw(port, upgrade_head(port))
    check(status == 101, "/sync upgrades as before")
    status, _, _ = get(port, "/sync")
    check(status == 426, "/sync without an upgrade: 426 as before")


def check_big(st, port, www):
    with open(os.path.join(www, "big.bin"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    status, h, body = get(port, "/big.bin")
    check(status == 200 and len(body) == BIG_BYTES
          and hashlib.sha256(body).hexdigest() == want,
          "a %d-byte file arrives whole (%d bytes)" % (BIG_BYTES, len(body)))
    # A client that reads slowly: the gateway keeps a bounded buffer and
    # answers others meanwhile.
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(("GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port).encode())
    data = s.recv(SLOW_READ)
    t0 = time.monotonic()
    health = st.health(port)
    elapsed = time.monotonic() - t0
    check(health is not None and health.get("status") == "ok" and elapsed < 5,
          "/healthz answered during a slow transfer (%.3f s)" % elapsed)
    reads = 0
    while True:
        chunk = s.recv(SLOW_READ)
        if not chunk:
            break
        data += chunk
        reads += 1
        if reads % 16 == 0:
            time.sleep(0.01)
    s.close()
    _, _, body = data.partition(b"\r\n\r\n")
    check(len(body) == BIG_BYTES and hashlib.sha256(body).hexdigest() == want,
          "the slowly read file arrives whole too (%d reads)" % reads)
    # Clients that leave in the middle do not stop the gateway.
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        s.sendall(("GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port).encode())
        s.recv(1024)
        s.close()
    status, _, body = get(port, "/big.bin")
    check(status == 200 and len(body) == BIG_BYTES,
          "after 20 clients left mid-file, the file is still served whole")


async def sync_still_works(st):
    c = await Client.open(st.url(), "static")
    try:
        r = await c.mutate("db/insert", {"table": "t", "doc": {"n": 1}})
        check(isinstance(r.get("value"), str), "a mutation over /sync next to static_dir")
    finally:
        await c.close()


def main():
    st = Stack(conf="static_max_file_bytes %d\n" % MAX_FILE)
    root = os.path.join(st.dir, "site")
    www, files = make_tree(root)
    with open(st.conf, "a") as f:
        f.write("static_dir %s\n" % www)
    try:
        st.start_writer()
        st.start_gateway()
        port = st.gateways[0].port
        check_files(port, www, files)
        check_corpus(port)
        check_big(st, port, www)
        run(sync_still_works(st))
        check(st.gateways[0].poll() is None, "the gateway is still running")
        with open(os.path.join(st.dir, "gatewayd-%d.log" % port), "rb") as f:
            log = f.read().decode("utf-8", "replace")
        if "landlock unavailable" in log:
            print("landlock unavailable here: the files were served without it")
        else:
            check("landlock: restricted" in log and ("and reading " + www) in log,
                  "the files were served under Landlock, which grants reading static_dir")
    finally:
        st.cleanup()

    # Without static_dir, nothing is served.
    st = Stack()
    try:
        st.start_writer()
        st.start_gateway()
        port = st.gateways[0].port
        statuses = [get(port, p)[0] for p in ("/", "/index.html", "/app.js")]
        check(statuses == [404, 404, 404], "without static_dir: 404 (%s)" % statuses)
    finally:
        st.cleanup()
    finish()


main()
