"""Hostile and broken clients, from the checked-in corpus
(hostile/corpus.json, each case with its expected answer) plus the cases
that need timing or numbers: slowloris heads and frames, thousands of
connections from one client, huge and deeply nested JSON.  A
well-behaved client measures its update latency meanwhile: p99 under
100 ms, and the gateway answers everything as documented."""

import asyncio
import json
import os
import resource
import socket
import subprocess
import time

from tvtest import CTL, Client, RawWs, check, http_raw, run_stack

# Thousands of sockets here and in the gateway (which inherits this).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 8192), _hard))

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = ("handshake_timeout 2s\nidle_timeout 3s\nping_interval 1s\n"
        "max_connections 1500\n")


def frame_bytes(w, f):
    if "payload_hex" in f:
        payload = bytes.fromhex(f["payload_hex"])
    elif "payload_repeat" in f:
        payload = f["payload_repeat"][0].encode() * f["payload_repeat"][1]
    else:
        payload = f["payload"].encode()
    return w.frame(f["op"], payload, fin=f.get("fin", True), mask=f.get("mask", True), rsv=f.get("rsv", 0))


def connected_raw(port):
    w = RawWs(port)
    w.send_text(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "tinyvex/connect",
                            "params": {"sessionId": "hostile"}}))
    m = w.read_text()
    assert m and m.get("id") == 0, m
    return w


def first_error_kind(w):
    while True:
        m = w.read_text()
        if m is None:
            return None
        if isinstance(m, list):
            m = m[0]
        if "error" in m:
            return m["error"]["data"]["kind"]
        if "result" in m:
            return "result"


class Latency:
    def __init__(self):
        self.samples = []


async def measure(st, lat, stop):
    good = await Client.open(st.url(), "good")
    w = await Client.open(st.url(), "good-writer")
    doc = (await w.mutate("db/insert", {"table": "lat", "doc": {"v": 0}}))["value"]
    await good.modify(add=[(1, "db/get", {"table": "lat", "id": doc})])
    i = 0
    while not stop.is_set():
        i += 1
        t0 = time.monotonic()
        await w.mutate("db/patch", {"table": "lat", "id": doc, "set": {"v": i}})
        ok = await good.wait(lambda: (good.values.get(1) or {}).get("v") == i, 5)
        lat.samples.append(time.monotonic() - t0 if ok else 5.0)
        await asyncio.sleep(0.02)
    await good.close()
    await w.close()


def run_corpus(st, corpus):
    port = st.gateways[0].port
    for case in corpus["http"]:
        status, hdrs, _ = http_raw(port, case["send"].encode("latin-1"))
        check(status == case["status"], "http %s: %d (got %s)" % (case["name"], case["status"], status))
        if status == 101:
            check("Sec-WebSocket-Extensions" not in hdrs, "http %s: extension not echoed" % case["name"])
    for case in corpus["frames"]:
        w = connected_raw(port)
        for f in case["frames"]:
            w.send(frame_bytes(w, f))
        code = w.close_code(deadline=10)
        check(code == case["close"], "frames %s: close %d (got %s)" % (case["name"], case["close"], code))
        w.close()
    for case in corpus["rpc"]:
        w = connected_raw(port)
        if "send_batch_ops" in case:
            ops = [{"op": "insert", "table": "t", "doc": {"i": i}} for i in range(case["send_batch_ops"])]
            text = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tinyvex/mutation",
                               "params": {"udfPath": "db/batch", "args": {"ops": ops}}})
        else:
            text = case["send"]
        w.send_text(text.encode())
        kind = first_error_kind(w)
        check(kind == case["error"], "rpc %s: %s (got %s)" % (case["name"], case["error"], kind))
        # The connection stays usable after an error answer.
        w.send_text(json.dumps({"jsonrpc": "2.0", "id": 77, "method": "tinyvex/ping", "params": {}}))
        m = w.read_text()
        check(m is not None and m.get("id") == 77, "rpc %s: connection still usable" % case["name"])
        w.close()


def slowloris(st):
    port = st.gateways[0].port
    # A head sent a byte at a time, slower than handshake_timeout.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = b"GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    t0 = time.time()
    answer = b""
    try:
        for b in head:
            s.sendall(bytes([b]))
            time.sleep(0.2)
            if time.time() - t0 > 6:
                break
        answer = s.recv(4096)
    except OSError:
        pass
    check(answer.startswith(b"HTTP/1.1 408") or answer == b"",
          "slowloris head: 408 or closed (%r)" % answer[:20])
    check(time.time() - t0 < 6, "slowloris head cut off after the handshake timeout (%.1f s)" % (time.time() - t0))
    s.close()
    # Half a frame, then silence: closed by the idle timeout.
    w = connected_raw(port)
    full = w.frame(1, b'{"jsonrpc":"2.0","id":5,"method":"tinyvex/ping"}')
    w.send(full[:5])
    t0 = time.time()
    code = w.close_code(deadline=15)
    check(code == 1008, "slowloris frame: closed 1008 by the idle timeout (got %s)" % code)
    check(time.time() - t0 < 10, "within the idle timeout (%.1f s)" % (time.time() - t0))
    w.close()


def many_connections(st, n=2000):
    port = st.gateways[0].port
    socks, refused = [], 0
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        except OSError:
            refused += 1
    # Upgrade them all; past max_connections the answer is 503.
    head = ("GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    for s in socks:
        try:
            s.sendall(head)
        except OSError:
            pass
    statuses = {}
    for s in socks:
        try:
            data = s.recv(64)
            code = int(data.split(b" ")[1]) if data else 0
        except (OSError, IndexError, ValueError):
            code = 0
        statuses[code] = statuses.get(code, 0) + 1
    h = st.health()
    ok101 = statuses.get(101, 0)
    check(refused == 0, "%d connections opened from one client (%d refused)" % (n, refused))
    check(1400 <= ok101 <= 1500, "up to max_connections upgraded: %s" % statuses)
    check(statuses.get(503, 0) == n - ok101, "those past max_connections were refused with 503 (%d)"
          % statuses.get(503, 0))
    check(h is not None and h["connections"] <= 1500, "the gateway holds at most max_connections (%s)"
          % (h and h["connections"]))
    for s in socks:
        s.close()


async def main(st):
    with open(os.path.join(HERE, "hostile", "corpus.json")) as f:
        corpus = json.load(f)
    # A table for the queries, and a retention floor above ts 1.
    seed = await Client.open(st.url(), "seed")
    await seed.mutate("db/insert", {"table": "t", "doc": {"i": 0}})
    await seed.close()
    await asyncio.sleep(1.1)
    subprocess.run([CTL, "-r", st.dir, "gc", "--keep", "1s"], check=True, stdout=subprocess.DEVNULL)

    lat = Latency()
    stop = asyncio.Event()
    task = asyncio.ensure_future(measure(st, lat, stop))
    loop = asyncio.get_event_loop()
    await asyncio.sleep(0.3)
    await loop.run_in_executor(None, run_corpus, st, corpus)
    await loop.run_in_executor(None, slowloris, st)
    await loop.run_in_executor(None, many_connections, st)
    # Huge but valid JSON is parsed and answered; deep JSON is refused.
    c = await Client.open(st.url(), "big")
    r = await c.call("tinyvex/ping", {"filler": list(range(90000))})
    check(isinstance(r["serverTs"], int), "a 600 KB message is answered")
    await c.send_raw("[" * 100000 + "]" * 100000)
    ok = await c.wait(lambda: ("answer", None) in c.events, 10)
    check(ok, "100,000 levels of nesting get an error, not a crash")
    await c.close()
    stop.set()
    await task
    xs = sorted(lat.samples)
    p99 = xs[int(len(xs) * 0.99)] if xs else 1
    check(len(xs) >= 20, "%d latency samples during the hostile run" % len(xs))
    check(p99 < 0.1, "a well-behaved client's p99 update latency: %.1f ms (max %.1f ms)"
          % (p99 * 1000, xs[-1] * 1000 if xs else 0))
    h = st.health()
    check(h is not None and h["status"] == "ok", "the gateway is still healthy")


run_stack(main, conf=CONF)
