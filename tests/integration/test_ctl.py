#!/usr/bin/python3
"""
tinyvexctl against the real writerd, then against a scripted stand-in
for writerd's control socket.

Usage: test_ctl.py WRITERD TINYVEXCTL

The first half starts writerd -d -r TMPDIR and runs every command through
tinyvexctl, text and JSON output, good and bad arguments, and sends
garbage to control.sock directly.  The second half answers tinyvexctl
itself, so it can check what the client sends (two-word commands, an
absolute backup path) and that it fails closed on bad replies: exact
integers, a malformed or over-long frame, a hang-up, a timeout.
Standard library only.
"""
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

CTL_REQUEST = 100
CTL_REPLY = 101
CTL_MAX_REPLY = 8 * 1024 * 1024
CTL_TIMEOUT = 10            # seconds tinyvexctl waits for most replies
START_TIMEOUT = 10          # seconds for writerd to create control.sock
STOP_TIMEOUT = 5            # seconds for writerd to exit on SIGTERM

failures = 0
prog = "tinyvexctl"         # how tinyvexctl names itself: its file name


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name,
                        "" if ok or not detail else " (%s)" % detail))
    sys.stdout.flush()
    if not ok:
        failures += 1
    return ok


def run(ctl, statedir, *args, cwd=None, timeout=60):
    return subprocess.run([ctl, "-r", statedir] + list(args), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def show(p):
    return "rc %d, stdout %r, stderr %r" % (p.returncode, p.stdout[:300],
                                            p.stderr[:300])


def failed_with(p, words):
    """Exit 1, nothing on stdout, a tinyvexctl: line naming words."""
    return (p.returncode == 1 and p.stdout == "" and
            p.stderr.startswith(prog + ": ") and
            all(w in p.stderr for w in words))


def text_fields(out):
    """'key: value' lines of text output as a dict."""
    d = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            d[k.strip()] = v.strip()
    return d


# -- msgpack, just what the control protocol uses -------------------------

def mp_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    if len(b) < 65536:
        return b"\xda" + struct.pack(">H", len(b)) + b
    return b"\xdb" + struct.pack(">I", len(b)) + b


def frame(mtype, seq, body, length=None, flags=0):
    if length is None:
        length = 16 + len(body)
    return struct.pack(">IIII", length, mtype, seq, flags) + body


def reply(ok, text, seq=1, mtype=CTL_REPLY):
    body = b"\x92" + (b"\xc3" if ok else b"\xc2") + mp_str(text)
    return frame(mtype, seq, body)


def mp_decode(b, i=0):
    """Decode one object at b[i:]; return (value, next index)."""
    c = b[i]
    if c <= 0x7f:
        return c, i + 1
    if 0x90 <= c <= 0x9f:
        n, i = c & 0x0f, i + 1
    elif c == 0xdc:
        n, i = struct.unpack(">H", b[i + 1:i + 3])[0], i + 3
    elif 0xa0 <= c <= 0xbf or c in (0xd9, 0xda, 0xdb):
        if c <= 0xbf:
            n, i = c & 0x1f, i + 1
        elif c == 0xd9:
            n, i = b[i + 1], i + 2
        elif c == 0xda:
            n, i = struct.unpack(">H", b[i + 1:i + 3])[0], i + 3
        else:
            n, i = struct.unpack(">I", b[i + 1:i + 5])[0], i + 5
        return b[i:i + n].decode(), i + n
    elif c in (0xcc, 0xcd, 0xce, 0xcf):
        w = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[c]
        return int.from_bytes(b[i + 1:i + 1 + w], "big"), i + 1 + w
    else:
        raise ValueError("unexpected msgpack byte 0x%02x" % c)
    out = []
    for _ in range(n):
        v, i = mp_decode(b, i)
        out.append(v)
    return out, i


def recv_frame(conn):
    data = b""
    while len(data) < 16 or len(data) < struct.unpack(">I", data[:4])[0]:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    length, mtype, seq, flags = struct.unpack(">IIII", data[:16])
    body, end = mp_decode(data[16:length])
    return {"type": mtype, "seq": seq, "flags": flags, "body": body,
            "trailing": len(data[16:length]) - end}


# -- the real writerd -----------------------------------------------------

def start_writerd(writerd, statedir, logpath):
    log = open(logpath, "wb")
    p = subprocess.Popen([writerd, "-d", "-r", statedir],
                         stdout=log, stderr=subprocess.STDOUT)
    log.close()
    sock = os.path.join(statedir, "control.sock")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.exists(sock):
            return p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    return p if os.path.exists(sock) else None


def real_tests(writerd, ctl, tmp):
    statedir = os.path.join(tmp, "state")
    logpath = os.path.join(tmp, "writerd.log")

    p = run(ctl, statedir, "status")
    check("status without writerd fails clearly",
          failed_with(p, ["cannot connect to", "control.sock",
                          "is writerd running?"]), show(p))

    wd = start_writerd(writerd, statedir, logpath)
    if not check("writerd creates control.sock", wd is not None):
        return
    try:
        real_commands(ctl, statedir, tmp)
    finally:
        wd.send_signal(signal.SIGTERM)
        try:
            rc = wd.wait(STOP_TIMEOUT)
            check("writerd exits 0 within %d s of SIGTERM" % STOP_TIMEOUT,
                  rc == 0, "rc %d" % rc)
        except subprocess.TimeoutExpired:
            check("writerd exits within %d s of SIGTERM" % STOP_TIMEOUT,
                  False)
            wd.kill()
            wd.wait()
        if failures:
            with open(logpath, errors="replace") as f:
                sys.stdout.write("--- writerd log\n" + f.read()[-4000:])

    p = run(ctl, statedir, "status")
    check("status after writerd stopped fails clearly",
          failed_with(p, ["cannot connect to", "is writerd running?"]),
          show(p))


def real_commands(ctl, statedir, tmp):
    p = run(ctl, statedir, "status")
    f = text_fields(p.stdout)
    check("status: exit 0, text shows ts",
          p.returncode == 0 and f.get("ts", "").isdigit() and
          f.get("status") == "running", show(p))

    p = run(ctl, statedir, "-j", "status")
    try:
        st = json.loads(p.stdout)
    except ValueError:
        st = None
    check("-j status: one JSON object with integer ts",
          p.returncode == 0 and isinstance(st, dict) and
          type(st.get("ts")) is int and p.stdout.endswith("}\n"), show(p))
    if isinstance(st, dict):
        check("-j status: pid is writerd's, an integer",
              type(st.get("pid")) is int and st["pid"] > 0, repr(st))

    p = run(ctl, statedir, "-j", "stats")
    try:
        st = json.loads(p.stdout)
    except ValueError:
        st = None
    w = st.get("writer") if isinstance(st, dict) else None
    check("-j stats: writer.commits, ts, db_bytes are integers",
          p.returncode == 0 and isinstance(w, dict) and
          all(type(w.get(k)) is int for k in
              ("commits", "ts", "db_bytes", "revisions",
               "retention_floor")) and
          isinstance(st.get("gateways"), list), show(p))

    p = run(ctl, statedir, "stats")
    lines = p.stdout.splitlines()
    check("stats: text has a writer section with commits",
          p.returncode == 0 and lines[:1] == ["writer"] and
          any(l.startswith("  commits:") for l in lines), show(p))
    cols = set(len(l) - len(l.split(":", 1)[1].lstrip())
               for l in lines if l.startswith("  ") and ":" in l)
    check("stats: writer values aligned in one column", len(cols) == 1,
          repr(cols))

    p = run(ctl, statedir, "checkpoint")
    check("checkpoint: exit 0, wal_frames shown",
          p.returncode == 0 and "wal_frames" in text_fields(p.stdout),
          show(p))

    p = run(ctl, statedir, "log", "verbose")
    check("log verbose", p.returncode == 0 and
          text_fields(p.stdout).get("log") == "verbose", show(p))
    p = run(ctl, statedir, "-j", "log", "brief")
    check("-j log brief", p.returncode == 0 and
          json.loads(p.stdout or "null") == {"log": "brief"}, show(p))
    p = run(ctl, statedir, "log", "bogus")
    check("log bogus: exit 1 with writerd's message",
          failed_with(p, ["verbose or brief"]), show(p))
    p = run(ctl, statedir, "log")
    check("log without an argument: usage, exit 1",
          p.returncode == 1 and "usage: tinyvexctl" in p.stderr and
          "log verbose|brief" in p.stderr, show(p))

    p = run(ctl, statedir, "-j", "gc", "--keep", "1h")
    try:
        g = json.loads(p.stdout)
    except ValueError:
        g = None
    check("-j gc --keep 1h: report with integer fields",
          p.returncode == 0 and isinstance(g, dict) and
          all(type(g.get(k)) is int for k in
              ("retention_floor", "revisions_deleted", "steps",
               "elapsed_us")), show(p))
    p = run(ctl, statedir, "gc", "--keep", "soon")
    check("gc --keep soon: bad duration, exit 1",
          failed_with(p, ["bad duration", "soon"]), show(p))
    p = run(ctl, statedir, "gc", "now")
    check("gc now: usage, exit 1",
          p.returncode == 1 and "gc [--keep DURATION]" in p.stderr, show(p))

    dest = os.path.join(tmp, "x.db")
    p = run(ctl, statedir, "backup", dest)
    check("backup ABSPATH: exit 0, path shown",
          p.returncode == 0 and text_fields(p.stdout).get("path") == dest,
          show(p))
    try:
        db = sqlite3.connect("file:%s?mode=ro" % dest, uri=True)
        rows = db.execute("SELECT name FROM sqlite_master WHERE "
                          "type = 'table' AND name = 'documents'").fetchall()
        db.execute("SELECT count(*) FROM documents").fetchone()
        db.close()
        check("backup opens in sqlite3 with a documents table",
              rows == [("documents",)], repr(rows))
    except sqlite3.Error as e:
        check("backup opens in sqlite3 with a documents table", False,
              str(e))
    p = run(ctl, statedir, "backup", dest)
    check("backup to an existing path: exit 1",
          failed_with(p, ["exists"]), show(p))

    p = run(ctl, statedir, "-j", "backup", "rel.db", cwd=tmp)
    try:
        b = json.loads(p.stdout)
    except ValueError:
        b = None
    check("backup RELPATH lands in the current directory",
          p.returncode == 0 and isinstance(b, dict) and
          b.get("path") == os.path.join(os.path.realpath(tmp), "rel.db")
          and os.path.exists(os.path.join(tmp, "rel.db")), show(p))

    p = run(ctl, statedir, "schema", "reload")
    check("schema reload without -s: exit 1 with message",
          failed_with(p, ["schema file"]), show(p))

    p = run(ctl, statedir, "frobnicate")
    check("unknown command: exit 1, usage",
          p.returncode == 1 and "unknown command frobnicate" in p.stderr
          and "usage: tinyvexctl [-j] [-r DIR] COMMAND [ARG ...]" in
          p.stderr, show(p))
    p = run(ctl, statedir, "schema")
    check("half a two-word command: exit 1",
          p.returncode == 1 and "unknown command schema" in p.stderr,
          show(p))

    # Garbage on the socket closes that connection, not writerd.
    sock = os.path.join(statedir, "control.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    closed = False
    try:
        s.connect(sock)
        s.sendall(b"\xff\xfe garbage, not a frame \x00\x01" * 4)
        closed = s.recv(4096) == b""
    except ConnectionResetError:
        closed = True
    except OSError as e:
        check("garbage: connection closed by writerd", False, str(e))
    finally:
        s.close()
    check("garbage: connection closed by writerd", closed)

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(sock)
        # A well-formed frame whose body is not a CTL_REQUEST.
        s.sendall(frame(CTL_REQUEST, 7, b"\x91\xc0"))
        closed = s.recv(4096) == b""
    except ConnectionResetError:
        closed = True
    finally:
        s.close()
    check("bad request body: connection closed by writerd", closed)

    p = run(ctl, statedir, "status")
    check("status still works after garbage",
          p.returncode == 0 and "ts" in text_fields(p.stdout), show(p))


# -- a stand-in for writerd -------------------------------------------------

class Fake:
    """Listen on DIR/control.sock and answer each connection with fn."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "fake")
        os.mkdir(self.dir)
        self.path = os.path.join(self.dir, "control.sock")
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(self.path)
        self.ls.listen(4)
        self.ls.settimeout(30)

    def serve(self, ctl, args, fn, cwd=None):
        """Run tinyvexctl args; fn(conn, request) answers.  Returns
        (completed process, request, seconds)."""
        got = {}

        def one():
            try:
                conn, _ = self.ls.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                got["req"] = recv_frame(conn)
                fn(conn, got["req"])

        t = threading.Thread(target=one)
        t.start()
        t0 = time.monotonic()
        p = run(ctl, self.dir, *args, cwd=cwd, timeout=60)
        took = time.monotonic() - t0
        t.join(40)
        return p, got.get("req"), took

    def close(self):
        self.ls.close()


def answer(data):
    def fn(conn, req):
        if data:
            conn.sendall(data)
    return fn


def fake_tests(ctl, tmp):
    fk = Fake(tmp)
    try:
        fake_cases(fk, ctl, tmp)
    finally:
        fk.close()


def fake_cases(fk, ctl, tmp):
    ok_status = reply(True, '{"ts":1}')

    p, req, _ = fk.serve(ctl, ["status"], answer(ok_status))
    check("request: CTL_REQUEST seq 1 [1, \"status\", []]",
          req is not None and req["type"] == CTL_REQUEST and
          req["flags"] == 0 and req["body"] == [1, "status", []] and
          req["trailing"] == 0, repr(req))

    p, req, _ = fk.serve(ctl, ["schema", "reload"], answer(ok_status))
    check("schema reload is one command word with no args",
          req is not None and req["body"] == [1, "schema reload", []],
          repr(req))

    p, req, _ = fk.serve(ctl, ["gc", "--keep", "1h"], answer(ok_status))
    check("gc --keep 1h sends its two args",
          req is not None and req["body"] == [1, "gc", ["--keep", "1h"]],
          repr(req))

    p, req, _ = fk.serve(ctl, ["backup", "sub/b.db"], answer(ok_status),
                         cwd=tmp)
    want = os.path.join(os.path.realpath(tmp), "sub/b.db")
    check("backup makes a relative path absolute",
          req is not None and req["body"] == [1, "backup", [want]],
          repr(req))

    big = ('{"big":9223372036854775807,"neg":-12345678901234567,'
           '"f":1.5,"e":1e300,"s":"a\\u001bb\\"q","t":true,"n":null,'
           '"nested":{"x":18446744073709551615,"y":{"z":3}},'
           '"list":[1,2]}')
    p, _, _ = fk.serve(ctl, ["checkpoint"], answer(reply(True, big)))
    f = text_fields(p.stdout)
    check("text: integers printed exactly as sent",
          p.returncode == 0 and f.get("big") == "9223372036854775807" and
          f.get("neg") == "-12345678901234567" and
          f.get("nested.x") == "18446744073709551615" and
          f.get("nested.y.z") == "3" and f.get("f") == "1.5" and
          f.get("e") == "1e300", show(p))
    check("text: control characters in strings neutralised",
          f.get("s") == 'a?b"q' and "\x1b" not in p.stdout and
          f.get("t") == "true" and f.get("n") == "-" and
          f.get("list") == "[1,2]", show(p))
    p, _, _ = fk.serve(ctl, ["-j", "checkpoint"], answer(reply(True, big)))
    check("-j prints the reply's JSON text as-is",
          p.returncode == 0 and p.stdout == big + "\n", show(p))

    stats = ('{"writer":{"ts":5,"commits":2},"gateways":['
             '{"id":"gw-1","pid":42,"stats":{"connections":3,"queries":7},'
             '"stats_age_ms":10},{"id":"gw-2","pid":43}]}')
    p, _, _ = fk.serve(ctl, ["stats"], answer(reply(True, stats)))
    want = ("writer\n  ts:      5\n  commits: 2\n\n"
            "gateway gw-1\n  pid:          42\n  stats_age_ms: 10\n"
            "  connections:  3\n  queries:      7\n\n"
            "gateway gw-2\n  pid: 43\n")
    check("stats: writer section, then one section per gateway",
          p.returncode == 0 and p.stdout == want, show(p))

    p, _, _ = fk.serve(ctl, ["status"],
                       answer(reply(False, '{"error":"boom: it broke"}')))
    check("ok=false: writerd's error on stderr, exit 1",
          p.returncode == 1 and p.stdout == "" and
          p.stderr == prog + ": boom: it broke\n", show(p))

    bad = [
        ("reply text is not JSON", reply(True, "{not json")),
        ("reply JSON is not an object", reply(True, "[1,2]")),
        ("reply has a trailing byte",
         frame(CTL_REPLY, 1, b"\x92\xc3" + mp_str("{}") + b"\xc0")),
        ("reply body has three fields",
         frame(CTL_REPLY, 1, b"\x93\xc3" + mp_str("{}") + b"\xc0")),
        ("reply ok is not a bool",
         frame(CTL_REPLY, 1, b"\x92\x01" + mp_str("{}"))),
        ("reply has the wrong type", reply(True, "{}", mtype=CTL_REQUEST)),
        ("reply has the wrong seq", reply(True, "{}", seq=2)),
        ("reply has nonzero flags",
         frame(CTL_REPLY, 1, b"\x92\xc3" + mp_str("{}"), flags=1)),
        ("reply header shorter than a header",
         frame(CTL_REPLY, 1, b"", length=8)),
        ("reply string length beyond the frame",
         frame(CTL_REPLY, 1, b"\x92\xc3\xdb\x00\x00\x10\x00{}")),
    ]
    for name, data in bad:
        p, _, _ = fk.serve(ctl, ["status"], answer(data))
        check(name + ": malformed, exit 1",
              failed_with(p, ["malformed reply"]), show(p))

    # An over-long frame is refused from its header, before any body.
    over = struct.pack(">IIII", 16 + CTL_MAX_REPLY + 1024, CTL_REPLY, 1, 0)
    p, _, took = fk.serve(ctl, ["status"], answer(over))
    check("frame over CTL_MAX_REPLY refused from its header",
          failed_with(p, ["malformed reply"]) and took < CTL_TIMEOUT / 2,
          show(p))

    p, _, _ = fk.serve(ctl, ["status"], answer(b""))
    check("hang-up without a reply: exit 1",
          failed_with(p, ["closed the connection without a reply"]),
          show(p))
    p, _, _ = fk.serve(ctl, ["status"], answer(ok_status[:-3]))
    check("hang-up in mid-reply: exit 1",
          failed_with(p, ["mid-reply"]), show(p))

    def silent(conn, req):
        # Say nothing until tinyvexctl gives up and closes its end.
        try:
            conn.recv(1)
        except OSError:
            pass

    p, _, took = fk.serve(ctl, ["status"], silent)
    check("no reply: gives up after about %d s" % CTL_TIMEOUT,
          failed_with(p, ["no reply from writerd within %d s" %
                          CTL_TIMEOUT]) and
          CTL_TIMEOUT - 1 <= took < CTL_TIMEOUT + 5, show(p) +
          ", %.1f s" % took)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_ctl.py WRITERD TINYVEXCTL")
    global prog
    writerd, ctl = (os.path.abspath(a) for a in sys.argv[1:3])
    prog = os.path.basename(ctl)
    with tempfile.TemporaryDirectory(prefix="tinyvex-ctl.") as tmp:
        real_tests(writerd, ctl, tmp)
        fake_tests(ctl, tmp)
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
