"""Shared pieces of the integration tests: start the real daemons in a
temporary state directory, and a WebSocket client that speaks the wire
contract (JSON-RPC, transitions, chunks) with checks on version chaining.

Runs under /usr/bin/python3 with Debian's python3-websockets."""

import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

BUILD = os.environ.get("TINYVEX_BUILD", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
# TINYVEX_WRAP runs each daemon under a command, e.g. valgrind.
WRAP = os.environ.get("TINYVEX_WRAP", "").split()
WRITERD = os.environ.get("TINYVEX_WRITERD", os.path.join(BUILD, "writerd", "writerd"))
GATEWAYD = os.environ.get("TINYVEX_GATEWAYD", os.path.join(BUILD, "gatewayd", "gatewayd"))
CTL = os.environ.get("TINYVEX_CTL", os.path.join(BUILD, "ctl", "tinyvexctl"))

failures = 0
checks = 0


def check(cond, what):
    """Record one assertion; failures are counted, not raised, so a test
    reports every problem it sees."""
    global failures, checks
    checks += 1
    if cond:
        print("ok   " + what, flush=True)
    else:
        failures += 1
        print("FAIL " + what, flush=True)
    return cond


def finish():
    print("%d checks, %d failed" % (checks, failures), flush=True)
    sys.exit(1 if failures else 0)


# Ports for the daemons under test come from below the kernel's ephemeral
# range (net.ipv4.ip_local_port_range, 32768-60999 by default): a port
# from inside it can become a client's own local port while the gateway
# is down (a TCP connection to itself), and the gateway's restart on it
# then fails with "Address already in use".
PORT_LOW, PORT_HIGH = 20000, 32000


def free_port():
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(PORT_LOW, PORT_HIGH)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in %d-%d" % (PORT_LOW, PORT_HIGH))


def wait_for(pred, timeout=10.0, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def _nofile(n):
    """A preexec_fn that sets the child's RLIMIT_NOFILE to n (None: none)."""
    if n is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


class Stack:
    """writerd plus gatewayds on one temporary state directory."""

    def __init__(self, schema=None, conf=None, keep=False):
        self.dir = tempfile.mkdtemp(prefix="tinyvex-test-")
        self.keep = keep or bool(os.environ.get("TINYVEX_KEEP"))
        self.schema = None
        self.conf = None
        if schema is not None:
            self.schema = os.path.join(self.dir, "schema.json")
            with open(self.schema, "w") as f:
                json.dump(schema, f)
        if conf is not None:
            self.conf = os.path.join(self.dir, "tinyvex.conf")
            with open(self.conf, "w") as f:
                f.write(conf)
        self.writer = None
        self.gateways = []
        self.logs = []

    def _log(self, name):
        path = os.path.join(self.dir, name + ".log")
        self.logs.append(path)
        return open(path, "ab")

    def start_writer(self, extra=(), nofile=None):
        """writerd; nofile: its limit of open files (RLIMIT_NOFILE)."""
        args = WRAP + [WRITERD, "-d", "-r", self.dir]
        if self.schema:
            args += ["-s", self.schema]
        if self.conf:
            args += ["-f", self.conf]
        args += list(extra)
        self.writer = subprocess.Popen(args, stderr=self._log("writerd"),
                                       stdout=subprocess.DEVNULL,
                                       preexec_fn=_nofile(nofile))
        sock = os.path.join(self.dir, "control.sock")
        if not wait_for(lambda: os.path.exists(sock) or self.writer.poll() is not None,
                        60 if WRAP else 10):
            raise RuntimeError("writerd did not start")
        if self.writer.poll() is not None:
            raise RuntimeError("writerd exited: %s" % self.writer.returncode)
        return self.writer

    def start_gateway(self, port=None, extra=(), nofile=None):
        """A gatewayd on port (a free one by default); nofile: its limit
        of open files."""
        port = port or free_port()
        args = WRAP + [GATEWAYD, "-d", "-r", self.dir, "-l", "127.0.0.1:%d" % port]
        if self.conf:
            args += ["-f", self.conf]
        args += list(extra)
        p = subprocess.Popen(args, stderr=self._log("gatewayd-%d" % port),
                             stdout=subprocess.DEVNULL,
                             preexec_fn=_nofile(nofile))
        p.port = port
        self.gateways.append(p)
        if not wait_for(lambda: self.health(port) is not None or p.poll() is not None,
                        60 if WRAP else 10):
            raise RuntimeError("gatewayd did not start")
        # Ready when it has the database and the writer link.
        wait_for(lambda: (self.health(port) or {}).get("writer") is True, 10)
        return p

    def health(self, port=None):
        port = port or self.gateways[0].port
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                        timeout=5) as r:
                return json.loads(r.read())
        except Exception:
            return None

    def url(self, port=None):
        return "ws://127.0.0.1:%d/sync" % (port or self.gateways[0].port)

    def kill_writer(self):
        self.writer.kill()
        self.writer.wait()

    def stop(self):
        """SIGTERM every daemon still running; with TINYVEX_WRAP, a
        non-zero exit (the wrapper's error code) counts as a failure."""
        procs = self.gateways + ([self.writer] if self.writer else [])
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.stopped_by_us = True
        for p in procs:
            try:
                p.wait(60 if WRAP else 10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if WRAP and getattr(p, "stopped_by_us", False) and not getattr(p, "checked", False):
                p.checked = True
                check(p.returncode == 0, "%s under %s exited cleanly (%s)" % (
                    os.path.basename(p.args[len(WRAP)]), WRAP[0], p.returncode))

    def dump_logs(self):
        for path in self.logs:
            try:
                with open(path, "rb") as f:
                    data = f.read()[-4000:]
                sys.stdout.write("---- %s\n%s\n" % (path, data.decode("utf-8", "replace")))
            except OSError:
                pass

    def cleanup(self):
        self.stop()
        reports = sanitizer_reports(self)
        for line in reports[:20]:
            print("  " + line, flush=True)
        if os.environ.get("TINYVEX_SANITIZED") or reports:
            check(not reports, "no sanitizer reports in the daemons' logs (%d)" % len(reports))
        if failures:
            self.dump_logs()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class RpcError(Exception):
    def __init__(self, err):
        super().__init__("%s: %s" % (err.get("data", {}).get("kind"), err.get("message")))
        self.err = err
        self.code = err.get("code")
        self.kind = err.get("data", {}).get("kind")


class Client:
    """One WebSocket connection speaking tinyvex.v1.  A reader task keeps
    the query results, checks that transitions chain, and resolves
    answers; `events` records the order of everything received."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 1
        self.pending = {}
        self.values = {}
        self.failed = {}
        self.version = {"querySet": 0, "identity": 0, "ts": 0}
        self.transitions = []
        self.events = []
        self.chunks = {}
        self.chain_ok = True
        self.query_set = 0
        self.closed = None
        self.waiters = []
        self.hashes = {}
        self.diffs = 0
        self.unchanged = 0
        self.diff_errors = []
        self.bytes_in = 0
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url, session="s", connect=True, features=None, **kw):
        ws = await websockets.connect(url, subprotocols=["tinyvex.v1"],
                                      max_size=None, ping_interval=None, **kw)
        c = cls(ws)
        if connect:
            p = {"sessionId": session}
            if features is not None:
                p["features"] = list(features)
            c.hello = await c.call("tinyvex/connect", p)
        return c

    async def _read(self):
        msg = None
        try:
            async for msg in self.ws:
                self.bytes_in += len(msg.encode() if isinstance(msg, str) else msg)
                self._handle(json.loads(msg), len(msg))
        except websockets.ConnectionClosed as e:
            self.closed = e.code
        except Exception as e:  # noqa: BLE001 -- report and stop reading
            print("reader error:", repr(e), repr(msg)[:300], flush=True)
            self.closed = -1
        self.closed = self.closed or self.ws.close_code or 1006
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("closed %s" % self.closed))
        self._wake()

    def _wake(self):
        for w in list(self.waiters):
            if not w.done():
                w.set_result(None)

    def _handle(self, m, size):
        if isinstance(m, list):
            for x in m:
                self._handle(x, 0)
            return
        if "method" in m:
            meth = m["method"]
            if meth == "tinyvex/transition":
                self._transition(m["params"], size)
            elif meth == "tinyvex/transitionChunk":
                p = m["params"]
                parts = self.chunks.setdefault(p["transitionId"], [])
                if p["partNumber"] != len(parts):
                    self.chain_ok = False
                parts.append(p["chunk"])
                self.events.append(("chunk", p["partNumber"], size))
                if len(parts) == p["totalParts"]:
                    del self.chunks[p["transitionId"]]
                    self._transition(json.loads("".join(parts)), size, chunked=True)
            else:
                self.events.append(("notify", meth))
        else:
            self.events.append(("answer", m.get("id")))
            fut = self.pending.pop(m.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(m)
        self._wake()

    def _transition(self, t, size, chunked=False):
        if t["startVersion"] != self.version:
            self.chain_ok = False
            print("version chain broken: %r then %r" % (self.version, t["startVersion"]), flush=True)
        self.version = t["endVersion"]
        for mod in t["modifications"]:
            q = mod["queryId"]
            if mod["type"] == "QueryUpdated":
                self.values[q] = mod["value"]
                self.failed.pop(q, None)
            elif mod["type"] == "QueryDiff":
                self.diffs += 1
                if q not in self.values:
                    self.diff_errors.append("QueryDiff for %d, which holds no value" % q)
                else:
                    try:
                        self.values[q] = apply_diff(self.values[q], mod)
                    except (KeyError, ValueError, TypeError, IndexError) as e:
                        self.diff_errors.append("QueryDiff for %d does not apply: %r" % (q, e))
            elif mod["type"] == "QueryUnchanged":
                self.unchanged += 1
                if q not in self.values:
                    self.diff_errors.append("QueryUnchanged for %d, which holds no value" % q)
            elif mod["type"] == "QueryFailed":
                self.failed[q] = mod["error"]
                self.values.pop(q, None)
            elif mod["type"] == "QueryRemoved":
                self.values.pop(q, None)
                self.failed.pop(q, None)
            if "hash" in mod:
                self.hashes[q] = mod["hash"]
            else:
                self.hashes.pop(q, None)
        self.transitions.append(t)
        self.events.append(("transition", t["endVersion"]["ts"], chunked))

    async def send_raw(self, text):
        await self.ws.send(text)

    async def request(self, method, params=None):
        i = self.next_id
        self.next_id += 1
        fut = asyncio.get_event_loop().create_future()
        self.pending[i] = fut
        msg = {"jsonrpc": "2.0", "id": i, "method": method}
        if params is not None:
            msg["params"] = params
        await self.ws.send(json.dumps(msg))
        return fut

    async def call(self, method, params=None, timeout=20):
        fut = await self.request(method, params)
        m = await asyncio.wait_for(fut, timeout)
        if "error" in m:
            raise RpcError(m["error"])
        return m["result"]

    async def modify(self, add=(), remove=(), known=None):
        """add: (queryId, udfPath, args) each; known: queryId -> knownHash."""
        mods = [{"type": "Add", "queryId": q, "udfPath": u, "args": a} for (q, u, a) in add]
        for m in mods:
            if known and m["queryId"] in known:
                m["knownHash"] = known[m["queryId"]]
        mods += [{"type": "Remove", "queryId": q} for q in remove]
        new = self.query_set + 1
        r = await self.call("tinyvex/modifyQuerySet",
                            {"baseVersion": self.query_set, "newVersion": new,
                             "modifications": mods})
        self.query_set = new
        return r

    async def mutate(self, udf, args, request_id=None):
        p = {"udfPath": udf, "args": args}
        if request_id is not None:
            p["requestId"] = request_id
        return await self.call("tinyvex/mutation", p)

    async def wait(self, pred, timeout=10):
        end = time.time() + timeout
        while not pred():
            left = end - time.time()
            if left <= 0 or self.closed:
                return pred()
            w = asyncio.get_event_loop().create_future()
            self.waiters.append(w)
            try:
                await asyncio.wait_for(w, left)
            except asyncio.TimeoutError:
                pass
            finally:
                self.waiters.remove(w)
        return True

    async def close(self):
        await self.ws.close()
        try:
            await asyncio.wait_for(self.reader, 5)
        except asyncio.TimeoutError:
            pass


def apply_diff(value, mod):
    """The value a QueryDiff makes of the value held, by DESIGN §5's rules:
    ops on the array of documents (a db/query result, the page of a
    db/paginate result) matched by _id, or one update without id for a
    db/get document; fields replace the page result's other members."""
    value = json.loads(json.dumps(value))
    if isinstance(value, dict) and "_id" not in value and isinstance(value.get("page"), list):
        arr = value["page"]
    else:
        arr = value

    def find(i):
        for k, d in enumerate(arr):
            if d.get("_id") == i:
                return k
        raise KeyError("no document %r" % i)

    for op in mod["ops"]:
        kind = op["op"]
        if kind == "remove":
            del arr[find(op["id"])]
        elif kind == "insert":
            if not 0 <= op["at"] <= len(arr):
                raise IndexError("insert at %d of %d" % (op["at"], len(arr)))
            arr.insert(op["at"], op["doc"])
        elif kind == "update":
            doc = value if "id" not in op else arr[find(op["id"])]
            if not isinstance(doc, dict):
                raise TypeError("update of %r" % (doc,))
            for k, v in op.get("set", {}).items():
                doc[k] = v
            for k in op.get("unset", []):
                doc.pop(k, None)
            for k, v in op.get("append", {}).items():
                if not isinstance(doc.get(k), str):
                    raise TypeError("append to %r" % (doc.get(k),))
                doc[k] += v
        else:
            raise ValueError("op %r" % kind)
    for k, v in mod.get("fields", {}).items():
        value[k] = v
    return value


def run(coro):
    return asyncio.run(coro)


# Raw HTTP and WebSocket, for inputs a well-behaved client library refuses
# to send.

def run_stack(main, **stack_args):
    """The usual test: a Stack (schema=, conf=) with writerd and one
    gatewayd, main(stack) run to its end, the daemons stopped and the
    stack cleaned up whatever happened, then the count of checks."""
    st = Stack(**stack_args)
    try:
        st.start_writer()
        st.start_gateway()
        run(main(st))
    finally:
        st.cleanup()
    finish()


def http_raw(port, head, timeout=5):
    """Send head bytes, return (status, headers text, body) of the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head if isinstance(head, bytes) else head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if not data:
            return None, "", b""
        head_, _, body = data.partition(b"\r\n\r\n")
        status = int(head_.split(b" ", 2)[1])
        return status, head_.decode("latin-1"), body
    finally:
        s.close()


def upgrade_head(port, extra="", path="/sync", key="dGhlIHNhbXBsZSBub25jZQ==",
                 version="13", proto="tinyvex.v1"):
    h = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
         "Sec-WebSocket-Version: %s\r\n" % (path, port, key, version))
    if proto:
        h += "Sec-WebSocket-Protocol: %s\r\n" % proto
    return h + extra + "\r\n"


class RawWs:
    """A WebSocket client that writes frames byte by byte as told."""

    def __init__(self, port, extra=""):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.sendall(upgrade_head(port, extra).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.s.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake")
            data += chunk
        head, _, self.buf = data.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def frame(self, opcode, payload, fin=True, mask=True, rsv=0, length=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        if n < 126:
            hdr = bytes([b0, (0x80 if mask else 0) | n])
        elif n < 65536:
            hdr = bytes([b0, (0x80 if mask else 0) | 126]) + n.to_bytes(2, "big")
        else:
            hdr = bytes([b0, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            hdr += key
        return hdr + payload

    def send(self, data):
        self.s.sendall(data)

    def send_text(self, text):
        self.send(self.frame(1, text.encode() if isinstance(text, str) else text))

    def _read_frame(self):
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7f
                off = 2
                if n == 126:
                    if len(self.buf) < 4:
                        n = None
                    else:
                        n = int.from_bytes(self.buf[2:4], "big")
                        off = 4
                elif n == 127:
                    if len(self.buf) < 10:
                        n = None
                    else:
                        n = int.from_bytes(self.buf[2:10], "big")
                        off = 10
                if n is not None and len(self.buf) >= off + n:
                    op = self.buf[0] & 0x0f
                    payload = self.buf[off:off + n]
                    self.buf = self.buf[off + n:]
                    return op, payload
            chunk = self.s.recv(65536)
            if not chunk:
                return None, None
            self.buf += chunk

    def read_text(self):
        """The next text message (pings skipped), or None at close."""
        while True:
            op, payload = self._read_frame()
            if op is None or op == 8:
                self.last_close = payload
                return None
            if op == 1:
                return json.loads(payload)

    def read_message(self):
        """The next text message with tinyvex/transitionChunk parts joined
        into the tinyvex/transition they carry, or None at close."""
        parts = []
        while True:
            m = self.read_text()
            if m is None or m.get("method") != "tinyvex/transitionChunk":
                return m
            parts.append(m["params"]["chunk"])
            if len(parts) == m["params"]["totalParts"]:
                return {"method": "tinyvex/transition",
                        "params": json.loads("".join(parts))}

    def close_code(self, deadline=None):
        """Read until the close frame; its status code (1006 if none, None
        if still open after deadline seconds)."""
        end = time.time() + deadline if deadline else None
        try:
            while True:
                if end is not None and time.time() > end:
                    return None
                op, payload = self._read_frame()
                if op is None:
                    return 1006
                if op == 8:
                    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        except (socket.timeout, ConnectionError):
            return 1006

    def close(self):
        self.s.close()


# Reading the database file directly, beside the daemons: what is really
# stored, whatever the daemons answer.

def ctl(st, *args, raw=False, timeout=60):
    """Run tinyvexctl -j; the parsed reply, or None (printed) on failure.
    With raw, the CompletedProcess."""
    p = subprocess.run([CTL] + ([] if raw else ["-j"]) + ["-r", st.dir] +
                       list(args), capture_output=True, text=True,
                       timeout=timeout)
    if raw:
        return p
    try:
        out = json.loads(p.stdout) if p.returncode == 0 else None
    except ValueError:
        out = None
    if out is None:
        print("tinyvexctl %s: rc %d, %r %r" % (" ".join(args), p.returncode,
                                             p.stdout[:300], p.stderr[:300]))
    return out


def db_snapshot(statedir):
    """Copy tinyvex.db and its WAL (as they are on disk, e.g. after a
    crash) into a new temporary directory; returns the copy's path.  The
    caller removes the directory (os.path.dirname of the path)."""
    tmp = tempfile.mkdtemp(prefix="tinyvex-snap-")
    src = os.path.join(statedir, "tinyvex.db")
    dst = os.path.join(tmp, "tinyvex.db")
    shutil.copyfile(src, dst)
    if os.path.exists(src + "-wal"):
        shutil.copyfile(src + "-wal", dst + "-wal")
    return dst


def db_open(path, readonly=True):
    import sqlite3
    if readonly:
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    return sqlite3.connect(path, timeout=10)


def db_docs(path, table, readonly=True):
    """{_id: document} of the current documents of table in the database
    file at path ({} when the table does not exist)."""
    con = db_open(path, readonly)
    try:
        rows = con.execute(
            "SELECT c.id, d.json_value FROM current_documents c"
            " JOIN documents d ON d.seq = c.seq"
            " JOIN tables t ON t.table_id = c.table_id WHERE t.name = ?",
            (table,)).fetchall()
    finally:
        con.close()
    return {i: json.loads(v) for i, v in rows}


def db_integrity(path, readonly=True):
    """The first row of PRAGMA integrity_check ("ok" when sound)."""
    con = db_open(path, readonly)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def sanitizer_reports(st):
    """Lines of AddressSanitizer, LeakSanitizer or UBSan reports found in
    the daemons' logs of Stack st (always none without sanitizers)."""
    marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
             "runtime error:")
    out = []
    for path in st.logs:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        out += [os.path.basename(path) + ": " + line
                for line in text.splitlines() if any(m in line for m in marks)]
    return out
