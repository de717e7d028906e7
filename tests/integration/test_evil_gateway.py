"""A compromised gateway on writer.sock.  It connects with allowed
credentials and then sends what no real gateway would: frames without
HELLO, a wrong version, huge or tiny declared lengths, non-zero flags,
unknown and writer-only message types, mistyped and truncated msgpack,
counts that promise more than the frame holds, NUL bytes in strings,
oversized arguments, provider and action frames out of bounds or of the
writer's side, random frames, half a frame and then silence, more
connections than allowed, and thousands of valid mutations pipelined
without ever reading an answer.  writerd must drop (or answer) that link
and go on serving a real gatewayd and its client, whose every
acknowledged write must be in the database at the end."""

import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import time

from tvtest import (CTL, Client, RpcError, Stack, check, db_docs,
                    db_integrity, finish, run)

HELLO, WELCOME, MUTATE, RESULT, COMMIT, GW_STATS, SET_LOG = range(1, 8)
(PROVIDE, PROVIDED, UNPROVIDE, PROVIDER_GONE, ACTION, ACTION_CANCEL, RUN,
 RUN_CANCEL, RUN_DONE, ACTION_DONE) = range(8, 18)
IPC_VERSION = 1
MAX_GW_FRAME = 2 * 1024 * 1024
rng = random.Random(int(os.environ.get("TINYVEX_SEED", "0")) or None)


# A small msgpack encoder: enough to build well-formed and malformed bodies.

class Raw(bytes):
    """Bytes put into a body as they are."""


def mp(o):
    if isinstance(o, Raw):
        return bytes(o)
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        if 0 <= o < 1 << 64:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, str):
        o = o.encode()
        n = len(o)
        if n < 32:
            return bytes([0xa0 | n]) + o
        if n < 256:
            return b"\xd9" + bytes([n]) + o
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + o
        return b"\xdb" + struct.pack(">I", n) + o
    if isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 256:
            return b"\xc4" + bytes([n]) + bytes(o)
        return b"\xc6" + struct.pack(">I", n) + bytes(o)
    if isinstance(o, (list, tuple)):
        return array_hdr(len(o)) + b"".join(mp(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        hdr = bytes([0x80 | n]) if n < 16 else b"\xdf" + struct.pack(">I", n)
        return hdr + b"".join(mp(k) + mp(v) for k, v in o.items())
    raise TypeError(o)


def array_hdr(n):
    if n < 16:
        return bytes([0x90 | n])
    if n < 65536:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def frame(typ, body, seq=0, flags=0, length=None):
    if not isinstance(body, (bytes, bytearray)):
        body = mp(body)
    n = 16 + len(body) if length is None else length
    return struct.pack(">IIII", n, typ, seq, flags) + body


def hello(name="evil", version=IPC_VERSION):
    return frame(HELLO, [version, name, os.getpid()])


def mutate(seq, args, sid="evil-session", rid=None, udf="db/insert"):
    if not isinstance(args, str):
        args = json.dumps(args)
    return frame(MUTATE, [sid, rid, udf, args], seq=seq)


class Evil:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def read_frame(self, timeout=5):
        """The next frame (type, seq, body), or None at EOF or timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                if len(self.buf) >= 16:
                    n, typ, seq, _ = struct.unpack(">IIII", self.buf[:16])
                    if len(self.buf) >= n:
                        body = self.buf[16:n]
                        self.buf = self.buf[n:]
                        return typ, seq, body
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    return None
                self.buf += chunk
        except (socket.timeout, ConnectionResetError):
            return None

    def dropped(self, timeout=5):
        """True when writerd closes the link within timeout (whatever it
        sent before)."""
        self.s.settimeout(timeout)
        end = time.time() + timeout
        try:
            while time.time() < end:
                if not self.s.recv(1 << 20):
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        self.s.close()


def result_code(body):
    """The code of an IPC_RESULT body [ts, code, message, value]."""
    # fixarray of 4, then ts (any int), then code: decode just enough.
    assert body[0] == 0x94
    off = 1

    def read_int(off):
        b = body[off]
        if b < 0x80:
            return b, off + 1
        if b >= 0xe0:
            return b - 256, off + 1
        fmt = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
               0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}[b]
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, body[off + 1:off + 1 + size])[0], \
            off + 1 + size

    _, off = read_int(off)
    code, off = read_int(off)
    return code


BAD_AFTER_HELLO = [
    ("an unknown message type", frame(99, [1])),
    ("a writer-only type (WELCOME)", frame(WELCOME, [1, 0, 0])),
    ("a writer-only type (COMMIT)", frame(COMMIT, [1, 0, 0, None])),
    ("a second HELLO", hello()),
    ("non-zero flags", frame(MUTATE, ["s", None, "db/insert", "{}"],
                             flags=1)),
    ("a MUTATE with five fields", frame(MUTATE, ["s", None, "db/insert",
                                                 "{}", 1])),
    ("a MUTATE with three fields", frame(MUTATE, ["s", None, "db/insert"])),
    ("a MUTATE whose session id is an integer",
     frame(MUTATE, [7, None, "db/insert", "{}"])),
    ("a MUTATE whose request id is a float",
     frame(MUTATE, ["s", 1.5, "db/insert", "{}"])),
    ("a MUTATE whose request id is a boolean",
     frame(MUTATE, ["s", True, "db/insert", "{}"])),
    ("a MUTATE whose request id is binary",
     frame(MUTATE, ["s", b"rid", "db/insert", "{}"])),
    ("a MUTATE whose args are a map",
     frame(MUTATE, ["s", None, "db/insert", {"table": "x"}])),
    ("a MUTATE whose args are binary",
     frame(MUTATE, ["s", None, "db/insert", b"{}"])),
    ("a NUL byte in the session id",
     frame(MUTATE, ["ev\x00il", None, "db/insert", "{}"])),
    ("a NUL byte in the udfPath",
     frame(MUTATE, ["s", None, "db/insert\x00x", "{}"])),
    ("a NUL byte in the request id",
     frame(MUTATE, ["s", "r\x00", "db/insert", "{}"])),
    ("a session id over the limit",
     frame(MUTATE, ["s" * 129, None, "db/insert", "{}"])),
    ("a udfPath over the limit",
     frame(MUTATE, ["s", None, "d" * 129, "{}"])),
    ("bytes after the array", frame(MUTATE, mp(["s", None, "db/insert",
                                                "{}"]) + b"\xc0")),
    ("a truncated body", frame(MUTATE, mp(["s", None, "db/insert",
                                           "{}"])[:-3])),
    ("an array that promises 4 billion fields",
     frame(MUTATE, b"\xdd\xff\xff\xff\xff" + mp("s"))),
    ("a string that promises 4 GiB", frame(MUTATE, array_hdr(4) + mp("s") +
                                          b"\xc0" + b"\xdb\xff\xff\xff\xff")),
    ("a body that is not an array", frame(MUTATE, mp({"a": 1}))),
    ("an empty body", frame(MUTATE, b"")),
    ("a reserved msgpack byte", frame(MUTATE, array_hdr(4) + b"\xc1" * 4)),
    ("deep nesting in a field",
     frame(MUTATE, array_hdr(4) + b"\x91" * 100000 + b"\xc0")),
    ("a GW_STATS that is a number", frame(GW_STATS, [5])),
    ("a writer-only type (RUN)", frame(RUN, [1, 1, "s", "a/b", "{}"])),
    ("a writer-only type (ACTION_DONE)", frame(ACTION_DONE, [0, 0, "", "1"])),
    ("a PROVIDE of no functions", frame(PROVIDE, [1, 16, []])),
    ("a PROVIDE with concurrency 0", frame(PROVIDE, [1, 0, ["a/b"]])),
    ("a PROVIDE with concurrency 1025", frame(PROVIDE, [1, 1025, ["a/b"]])),
    ("a PROVIDE of 65 functions",
     frame(PROVIDE, [1, 4, ["f/%d" % i for i in range(65)]])),
    ("a PROVIDE of a name with a space", frame(PROVIDE, [1, 4, ["a b"]])),
    ("a PROVIDE of a name with * inside", frame(PROVIDE, [1, 4, ["a*/b"]])),
    ("an UNPROVIDE whose names are a string", frame(UNPROVIDE, [1, "a/b"])),
    ("a PROVIDER_GONE of a negative provider", frame(PROVIDER_GONE, [-1])),
    ("an ACTION whose args are not JSON", frame(ACTION, ["s", "a/b", "{x"])),
    ("an ACTION whose args are an array", frame(ACTION, ["s", "a/b", "[1]"])),
    ("an ACTION whose args are not UTF-8",
     frame(ACTION, ["s", "a/b", Raw(b"\xa9" + b'{"a":"\xff"}')])),
    ("an ACTION without a udfPath", frame(ACTION, ["s", "", "{}"])),
    ("an ACTION_CANCEL of a string", frame(ACTION_CANCEL, ["x"])),
    ("a RUN_DONE whose value is not JSON", frame(RUN_DONE, [1, 0, 0, "", "{x"])),
    ("a RUN_DONE with a mutation's code",
     frame(RUN_DONE, [1, -32005, 0, "", ""])),
    ("a RUN_DONE with a negative ts", frame(RUN_DONE, [1, 0, -1, "", "1"])),
    ("a GW_STATS over 64 KiB", frame(GW_STATS, ["x" * 70000])),
]


def case_dropped(path, what, data, with_hello=True):
    e = Evil(path)
    try:
        if with_hello:
            e.send(hello())
            got = e.read_frame()
            if got is None or got[0] != WELCOME:
                return check(False, "%s: no WELCOME first" % what)
        e.send(data)
        return e.dropped()
    finally:
        e.close()


async def real_write(c, acked, n):
    rid = "real-%d" % n
    r = await c.mutate("db/insert", {"table": "real", "doc": {"n": n}},
                       request_id=rid)
    acked[rid] = r["value"]


async def background(c, acked, stop, stats):
    n = 0
    while not stop.is_set():
        n += 1
        t0 = time.time()
        try:
            await real_write(c, acked, n)
            stats["max_s"] = max(stats["max_s"], time.time() - t0)
        except RpcError as e:
            stats["errors"].append(str(e))
        await asyncio.sleep(0.01)


def in_thread(fn, *a):
    return asyncio.get_event_loop().run_in_executor(None, fn, *a)


async def main(stk):
    path = os.path.join(stk.dir, "writer.sock")
    c = await Client.open(stk.url(), "real")
    watcher = await Client.open(stk.url(), "watcher")
    await watcher.modify(add=[(1, "db/query", {"table": "real",
                                               "order": "desc",
                                               "limit": 1})])
    acked = {}
    stats = {"max_s": 0.0, "errors": []}
    stop = asyncio.Event()
    bg = asyncio.ensure_future(background(c, acked, stop, stats))

    # Before HELLO.
    pre = [
        ("a MUTATE before HELLO", mutate(1, {"table": "e", "doc": {}})),
        ("a HELLO of another version", hello(version=2)),
        ("a HELLO with two fields", frame(HELLO, [1, "evil"])),
        ("a HELLO whose pid is a string", frame(HELLO, [1, "evil", "pid"])),
        ("a HELLO whose name is over the limit",
         frame(HELLO, [1, "n" * 200, 1])),
        ("a declared length of 4 GiB", frame(HELLO, b"", length=0xffffffff)),
        ("a declared length just over the frame limit",
         frame(HELLO, b"", length=MAX_GW_FRAME + 1)),
        ("a declared length shorter than the header",
         frame(HELLO, b"", length=5)),
        ("a zero length", b"\x00" * 16),
    ]
    for what, data in pre:
        check(await in_thread(case_dropped, path, what, data, False),
              "dropped at once: %s" % what)
    for what, data in BAD_AFTER_HELLO:
        check(await in_thread(case_dropped, path, what, data),
              "dropped after HELLO: %s" % what)

    # Well-formed but refused: answered, the link stays.
    def answered_cases():
        out = []
        e = Evil(path)
        e.send(hello())
        e.read_frame()
        big = json.dumps({"table": "e", "doc": {"x": "y" * (MAX_GW_FRAME -
                                                           4096)}})
        for what, args, udf, want in [
                ("args over max_args_bytes", big, "db/insert", -32006),
                ("args that are not JSON", "{not json", "db/insert", -32003),
                ("a NUL byte inside the args", '{"table":"e","doc":{"x":'
                 '"\x00"}}', "db/insert", None),
                ("an unknown udfPath", "{}", "no/such", -32004),
                ("a query's udfPath", '{"table":"e"}', "db/query", -32004)]:
            e.send(mutate(len(out) + 1, args, udf=udf))
            got = e.read_frame(10)
            while got is not None and got[0] != RESULT:
                got = e.read_frame(10)
            code = result_code(got[2]) if got else None
            out.append((what, got is not None and (want is None or
                                                   code == want), code))
        e.close()
        return out
    for what, ok, code in await in_thread(answered_cases):
        check(ok, "answered, not dropped: %s (code %s)" % (what, code))

    # Provider and action frames that are well-formed but refused, or
    # name calls that are over: answered or ignored, the link stays.
    def answered_actions():
        out = []
        e = Evil(path)
        e.send(hello())
        e.read_frame()
        for what, data, want, code in [
                ("a PROVIDE of db/x", frame(PROVIDE, [1, 4, ["db/x"]], seq=1),
                 PROVIDED, -32003),
                ("an ACTION nobody provides",
                 frame(ACTION, ["s", "no/one", "{}"], seq=2), ACTION_DONE,
                 -32004),
                ("a RUN_DONE of a call never sent",
                 frame(RUN_DONE, [99, 0, 0, "", "1"]), None, None),
                ("an ACTION_CANCEL of an unknown call",
                 frame(ACTION_CANCEL, [77]), None, None),
                ("a PROVIDER_GONE of an unknown provider",
                 frame(PROVIDER_GONE, [5]), None, None),
                ("an ACTION after those",
                 frame(ACTION, ["s", "no/one", "{}"], seq=3), ACTION_DONE,
                 -32004)]:
            e.send(data)
            if want is None:
                continue
            got = e.read_frame(10)
            while got is not None and got[0] != want:
                got = e.read_frame(10)
            # [code, ...]: a fixarray, then the code as a negative int.
            got_code = None
            if got is not None:
                b = got[2][1]
                fmt = {0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q"}.get(b)
                got_code = struct.unpack(fmt, got[2][2:2 + struct.calcsize(
                    fmt)])[0] if fmt else struct.unpack("b", bytes([b]))[0]
            out.append((what, got is not None and got_code == code, got_code))
        e.close()
        return out
    for what, ok, code in await in_thread(answered_actions):
        check(ok, "answered, not dropped: %s (code %s)" % (what, code))

    # The bound on providers over all gateways (REG_MAX_PROVIDERS).
    def many_providers(n=4096):
        e = Evil(path)
        e.send(hello())
        e.read_frame()
        e.send(b"".join(frame(PROVIDE, [i + 1, 1, ["p/*"]], seq=i + 1)
                        for i in range(n + 1)))
        codes = {}
        while len(codes) < n + 1:
            got = e.read_frame(20)
            if got is None:
                break
            if got[0] == PROVIDED:
                codes[got[1]] = got[2][1:]
        e.close()
        ok = sum(1 for i in range(1, n + 1) if codes.get(i, b"")[:1] == b"\x00")
        return ok, codes.get(n + 1)
    ok, last = await in_thread(many_providers)
    check(ok == 4096 and last is not None and last[:1] == b"\xd1" and
          struct.unpack(">h", last[1:3])[0] == -32006,
          "4096 providers registered, the next refused TooLarge (%d, %r)" % (
              ok, last[:3] if last else None))

    # Statistics that are not what a gateway sends: tinyvexctl stats
    # must still answer with valid JSON.
    def odd_stats():
        links = []
        for text in ["[" * 5000, '{"connections":1e999}', '{"a":"\x00"}',
                     '{"x":' + "1" * 60000 + "}", "\x00\xff not json",
                     '{"connections":-1,"queries":"many"}']:
            e = Evil(path)
            e.send(hello())
            e.read_frame()
            e.send(frame(GW_STATS, [text]))
            links.append(e)
        time.sleep(0.3)
        out = subprocess.run([CTL, "-j", "-r", stk.dir, "stats"],
                             capture_output=True, text=True, timeout=10)
        for e in links:
            e.close()
        try:
            json.loads(out.stdout)
            return out.returncode
        except ValueError:
            return "not JSON: %r" % out.stdout[:200]
    res = await in_thread(odd_stats)
    check(res == 0, "tinyvexctl stats answers valid JSON whatever the "
          "gateways' statistics say (%s)" % res)

    # Half a frame, then silence; and a link that never says HELLO.
    def stalled():
        e1 = Evil(path)
        e1.send(hello())
        e1.read_frame()
        e1.send(frame(MUTATE, ["s", None, "db/insert", "{}"])[:10])
        e2 = Evil(path)
        t0 = time.time()
        gone = e2.dropped(15)
        return e1, gone, time.time() - t0
    e1, gone, took = await in_thread(stalled)
    check(gone and took < 12, "a link without HELLO is dropped after the "
          "HELLO timeout (%.1f s)" % took)
    await real_write(c, acked, 100000)
    check(True, "writes go on while a link holds half a frame")
    e1.close()

    # More links than max_gateways: the extra ones are refused.
    def crowd():
        links = []
        for _ in range(70):
            try:
                links.append(Evil(path))
            except OSError:
                break
        for e in links:
            e.send(hello())
        refused = sum(1 for e in links if e.read_frame(5) is None)
        for e in links:
            e.close()
        return refused
    refused = await in_thread(crowd)
    check(refused >= 7, "links past max_gateways are refused (%d of 70)"
          % refused)

    # Random frames after HELLO.
    def fuzz(n):
        survived = 0
        for _ in range(n):
            e = Evil(path)
            e.send(hello())
            e.read_frame()
            for _ in range(rng.randint(1, 4)):
                typ = rng.choice([MUTATE, GW_STATS, HELLO, 0, 8, 255,
                                  rng.getrandbits(32)])
                kind = rng.random()
                if kind < 0.4:
                    body = os.urandom(rng.randint(0, 300))
                elif kind < 0.8:
                    fields = [rng.choice([None, True, -1, 2 ** 63,
                                          1.5, "s", "db/insert", b"\x00",
                                          "{}", [1, 2], {"a": None}])
                              for _ in range(rng.randint(0, 6))]
                    body = mp(fields)
                else:
                    body = mp(["s", rng.choice([None, "r", 5]),
                               rng.choice(["db/insert", "db/batch",
                                           "db/delete", "x"]),
                               rng.choice(["{}", '{"table":"e","doc":{}}',
                                           '{"ops":[]}', "[", '"x"'])])
                e.send(frame(typ, body, seq=rng.getrandbits(32),
                             flags=rng.choice([0, 0, 0, 1, 1 << 31])))
            e.dropped(0.2)
            e.close()
            survived += 1
        return survived
    await in_thread(fuzz, 150)
    check(stk.writer.poll() is None, "writerd survives 150 links of random "
          "frames")

    # Thousands of valid mutations, pipelined, never reading an answer.
    def flood(n):
        e = Evil(path)
        e.send(hello())
        e.read_frame()
        e.s.settimeout(20)
        sent = 0
        payload = b"".join(mutate(i + 1, {"table": "evil",
                                          "doc": {"i": i}},
                                  rid="f-%d" % i) for i in range(n))
        try:
            while sent < len(payload):
                sent += e.s.send(payload[sent:sent + 65536])
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        # Now drain what writerd sent until it hangs up.
        gone = e.dropped(20)
        e.close()
        return sent, gone
    t_flood = time.time()
    flood_task = in_thread(flood, 30000)
    # The real client keeps writing meanwhile.
    t0 = time.time()
    for k in range(20):
        await real_write(c, acked, 200000 + k)
    during = time.time() - t0
    sent, gone = await flood_task
    check(gone, "the flooding link is dropped (output bound) after %d "
          "KiB of mutations in %.1f s" % (sent // 1024, time.time() - t_flood))
    check(during < 15, "the real client's writes went on during the flood "
          "(20 in %.1f s)" % during)
    print("the flood's mutations that ran before the drop: %d" % len(
        db_docs(os.path.join(stk.dir, "tinyvex.db"), "evil")), flush=True)

    stop.set()
    await bg
    check(not stats["errors"], "the real client's writes all succeeded "
          "(%d, slowest %.2f s)%s" % (len(acked), stats["max_s"],
                                      "" if not stats["errors"] else
                                      ": %r" % stats["errors"][:3]))
    check(stk.writer.poll() is None, "writerd is still running")
    check((stk.health() or {}).get("writer") is True,
          "the real gateway's writer link is up")
    # The real gateway never lost its link: its watcher saw no gap.
    await real_write(c, acked, 300000)
    await watcher.wait(lambda: (watcher.values.get(1) or [{}])[0].get("n")
                       == 300000, 10)
    check((watcher.values.get(1) or [{}])[0].get("n") == 300000 and
          watcher.chain_ok, "the real gateway's subscriptions follow the "
          "writes")
    docs = db_docs(os.path.join(stk.dir, "tinyvex.db"), "real")
    check(all(i in docs for i in acked.values()),
          "every acknowledged write of the real client is in the database "
          "(%d)" % len(acked))
    check(db_integrity(os.path.join(stk.dir, "tinyvex.db")) == "ok",
          "integrity_check is ok")
    out = subprocess.run([CTL, "-j", "-r", stk.dir, "stats"],
                         capture_output=True, text=True, timeout=10)
    try:
        bad = json.loads(out.stdout)["writer"]["bad_frames"]
    except (ValueError, KeyError, TypeError):
        bad = None
    check(isinstance(bad, int) and bad >= len(pre) + len(BAD_AFTER_HELLO),
          "writerd counted the bad frames (%r)" % bad)
    await c.close()
    await watcher.close()


stk = Stack(conf="gateway_output_limit 1M\n")
try:
    stk.start_writer()
    stk.start_gateway()
    run(main(stk))
finally:
    stk.cleanup()
finish()
