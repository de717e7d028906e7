"""Privilege separation (needs root; skipped otherwise).  writerd runs
with -u tvwriter and gatewayd with -u tvgw (gateway_user tvgw), users the
test creates when they are missing; a third user, tvother, plays an
intruder.  Checks: both daemons run with every uid and gid of their user
(/proc/PID/status); the state directory and the files have the modes and
owners of writerd(8) FILES; the gateway's user can read the database but
not open it for writing; the gateway serves queries, subscriptions and
mutations end to end; writer.sock and control.sock refuse other users,
either at connect (file permissions) or by closing at once (peer
credentials), while the allowed users get through; and a second writerd
on the same directory refuses to start."""

import asyncio
import grp
import json
import os
import pwd
import socket
import stat
import struct
import subprocess
import sys

from tvtest import (CTL, WRITERD, Client, Stack, check, db_open, finish,
                    run)

WRITER_USER, GW_USER, OTHER_USER = "tvwriter", "tvgw", "tvother"


CREATED = []                    # users this run made, removed at the end


def ensure_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group",
                        "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True)
        print("created user %s" % name, flush=True)
        CREATED.append(name)
        return pwd.getpwnam(name)


def remove_created_users():
    """The machine as the test found it: users it made go again (with
    their groups); users that were there before stay."""
    for name in CREATED:
        p = subprocess.run(["userdel", name], capture_output=True,
                           text=True)
        print("removed user %s: %s" % (name, "ok" if p.returncode == 0
                                        else p.stderr.strip()), flush=True)


def as_user(uid, gid, fn, *args):
    """Run fn(*args) in a child with exactly uid and gid; its JSON-able
    result comes back through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = fn(*args)
        except Exception as e:  # noqa: BLE001 -- reported to the parent
            out = "exception: %r" % e
            code = 1
        os.write(w, json.dumps(out).encode())
        os._exit(code)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data) if data else None


def open_db(path, flags):
    try:
        os.close(os.open(path, flags))
        return "ok"
    except PermissionError:
        return "EACCES"
    except OSError as e:
        return "errno %d" % e.errno


def hello_frame():
    name = b"probe"
    body = (b"\x93\x01" + bytes([0xa0 | len(name)]) + name +
            b"\xce" + struct.pack(">I", os.getpid()))
    return struct.pack(">IIII", 16 + len(body), 1, 0, 0) + body


def probe(path, say_hello=False):
    """How a Unix socket treats this process: "EACCES" at connect,
    "closed" at once, "welcome" (a WELCOME to our HELLO) or "open"."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            s.connect(path)
        except PermissionError:
            return "EACCES"
        except OSError as e:
            return "errno %d" % e.errno
        s.settimeout(3)
        try:
            if say_hello:
                s.sendall(hello_frame())
            data = s.recv(64)
        except socket.timeout:
            return "open"
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
        if not data:
            return "closed"
        if len(data) >= 8 and struct.unpack(">I", data[4:8])[0] == 2:
            return "welcome"
        return "data"
    finally:
        s.close()


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "NoNewPrivs"):
                ids[k] = v.split()
    return ids


def owner_mode(path):
    st = os.lstat(path)
    return (pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
            stat.S_IMODE(st.st_mode))


def catalog(db):
    con = db_open(db)
    try:
        return (con.execute("SELECT * FROM tables ORDER BY 1").fetchall(),
                con.execute("SELECT * FROM index_defs ORDER BY 1").fetchall())
    finally:
        con.close()


async def end_to_end(stk):
    c = await Client.open(stk.url(), "privsep")
    await c.modify(add=[(1, "db/query", {"table": "p"})])
    r = await c.mutate("db/insert", {"table": "p", "doc": {"x": 1}},
                       request_id="p-1")
    ok = await c.wait(lambda: [d.get("x") for d in c.values.get(1) or []]
                      == [1], 10)
    q = await c.call("tinyvex/query", {"udfPath": "db/get",
                                       "args": {"table": "p",
                                                "id": r["value"]}})
    await c.close()
    return ok and q["value"]["x"] == 1


def main(stk, wr, gw, other):
    d = stk.dir
    db = os.path.join(d, "tinyvex.db")
    wsock = os.path.join(d, "writer.sock")
    csock = os.path.join(d, "control.sock")

    for name, pid, pw in (("writerd", stk.writer.pid, wr),
                          ("gatewayd", stk.gateways[0].pid, gw)):
        ids = proc_ids(pid)
        check(ids["Uid"] == [str(pw.pw_uid)] * 4 and
              ids["Gid"] == [str(pw.pw_gid)] * 4 and
              ids["Groups"] in ([], [str(pw.pw_gid)]),
              "%s runs as %s: every uid and gid (Uid %s, Gid %s, Groups %s)"
              % (name, pw.pw_name, " ".join(ids["Uid"]),
                 " ".join(ids["Gid"]), " ".join(ids["Groups"]) or "-"))

    want = {
        d: (WRITER_USER, GW_USER, 0o750),
        db: (WRITER_USER, GW_USER, 0o640),
        db + "-wal": (WRITER_USER, GW_USER, 0o640),
        db + "-shm": (WRITER_USER, GW_USER, 0o660),
        wsock: ("root", GW_USER, 0o660),
        csock: (WRITER_USER, None, 0o600),
    }
    for path, (u, g, mode) in want.items():
        have = owner_mode(path)
        check(have[0] == u and (g is None or have[1] == g) and
              have[2] == mode, "%s is %s:%s %o (want %s:%s %o)" % (
                  os.path.basename(path) or path, have[0], have[1], have[2],
                  u, g or "*", mode))

    res = as_user(gw.pw_uid, gw.pw_gid, lambda: [
        open_db(db, os.O_RDWR), open_db(db, os.O_RDONLY),
        open_db(db + "-wal", os.O_RDWR), open_db(db + "-shm", os.O_RDWR)])
    check(res[0] == "EACCES", "the gateway's user cannot open the database "
          "for writing (%s)" % res[0])
    check(res[2] == "EACCES", "nor the WAL (%s)" % res[2])
    check(res[1] == "ok" and res[3] == "ok", "but it can read the "
          "database and write -shm (%s, %s)" % (res[1], res[3]))
    res = as_user(other.pw_uid, other.pw_gid, open_db, db, os.O_RDONLY)
    check(res == "EACCES", "a third user cannot even read it (%s)" % res)

    # writer.sock: file permissions first, then peer credentials.
    res = as_user(other.pw_uid, other.pw_gid, probe, wsock, True)
    check(res in ("EACCES", "closed"), "writer.sock refuses a third user "
          "(%s)" % res)
    res = as_user(other.pw_uid, gw.pw_gid, probe, wsock, True)
    check(res == "closed", "writer.sock closes at once on a peer in the "
          "gateways' group with another uid (%s)" % res)
    res = as_user(gw.pw_uid, gw.pw_gid, probe, wsock, True)
    check(res == "welcome", "writer.sock welcomes the gateway user (%s)"
          % res)

    # control.sock: the same, and its peer check behind a loosened mode.
    for who, pw in (("the gateway user", gw), ("a third user", other)):
        res = as_user(pw.pw_uid, pw.pw_gid, probe, csock)
        check(res in ("EACCES", "closed"), "control.sock refuses %s (%s)"
              % (who, res))
    os.chmod(csock, 0o666)
    try:
        # (The third user needs the gateways' group to reach the directory.)
        for who, pw, gid in (("the gateway user", gw, gw.pw_gid),
                             ("a third user", other, gw.pw_gid)):
            res = as_user(pw.pw_uid, gid, probe, csock)
            check(res == "closed", "with its mode loosened, control.sock "
                  "still closes at once on %s (%s)" % (who, res))
    finally:
        os.chmod(csock, 0o600)
    out = subprocess.run([CTL, "-r", d, "status"], capture_output=True,
                         text=True, timeout=10, user=wr.pw_uid,
                         group=wr.pw_gid, extra_groups=[])
    check(out.returncode == 0, "control.sock answers tinyvexctl run as %s "
          "(exit %d)" % (WRITER_USER, out.returncode))
    out = subprocess.run([CTL, "-r", d, "status"], capture_output=True,
                         text=True, timeout=10, user=gw.pw_uid,
                         group=gw.pw_gid, extra_groups=[])
    check(out.returncode != 0, "and not run as %s (exit %d)"
          % (GW_USER, out.returncode))

    check(run(end_to_end(stk)), "the gateway serves subscriptions, "
          "mutations and queries end to end")

    # A second writerd on the same directory, with a schema of its own:
    # it must refuse before it touches the database.
    schema = os.path.join(d, "other-schema.json")
    with open(schema, "w") as f:
        json.dump({"tables": {"p": {"indexes": {"by_x": ["x"]}},
                              "q": {"indexes": {}}}}, f)
    before = catalog(db)

    def second(what):
        args = [WRITERD, "-d", "-r", d, "-u", WRITER_USER, "-s", schema]
        if stk.conf:
            args += ["-f", stk.conf]
        try:
            out = subprocess.run(args, capture_output=True, text=True,
                                 timeout=20)
            code, err = out.returncode, out.stderr
        except subprocess.TimeoutExpired:
            code, err = None, "still running"
        check(code not in (0, None) and "another daemon is answering" in
              err, "a second writerd refuses to start while %s answers "
              "(exit %s: %s)" % (what, code, err.strip().splitlines()[-1:]))
        check(catalog(db) == before, "and it changed nothing in the "
              "database (tables and indexes as before)")

    second("writer.sock")
    # Hide writer.sock for a moment: control.sock alone must do it too.
    os.rename(wsock, wsock + ".away")
    try:
        second("control.sock")
    finally:
        os.replace(wsock + ".away", wsock)
    check(stk.writer.poll() is None and os.path.exists(csock) and
          os.path.exists(wsock), "the first writerd and its sockets are "
          "still there")
    check(run(end_to_end(stk)), "and the gateway still serves end to end")


if os.geteuid() != 0:
    print("skip: privilege separation needs root (running as uid %d)"
          % os.geteuid(), flush=True)
    sys.exit(0)

try:
    wr = ensure_user(WRITER_USER)
    gw = ensure_user(GW_USER)
    other = ensure_user(OTHER_USER)
    stk = Stack(conf="gateway_user %s\n" % GW_USER)
    try:
        # mkdtemp made it 0700: writerd must open it to the gateways' group.
        stk.start_writer(extra=["-u", WRITER_USER])
        stk.start_gateway(extra=["-u", GW_USER])
        main(stk, wr, gw, other)
    finally:
        stk.cleanup()
finally:
    remove_created_users()
finish()
