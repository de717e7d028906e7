"""The gateway's sandbox.  After start-up gatewayd sets no_new_privs and,
where the kernel has Landlock, restricts itself to its state directory
(it logs "landlock: restricted (ABI n)"; without Landlock it logs
"landlock unavailable: why").  Under the sandbox it must still do all its
work: open the database, its WAL and -shm, connect to writer.sock again
after a writer restart, serve subscriptions, mutations, one-shot queries
and reads at a past ts.  A gateway started before its state directory
exists restricts itself once the directory appears."""

import ctypes
import os
import signal
import subprocess

from tvtest import (GATEWAYD, WRAP, WRITERD, Client, Stack, check, finish,
                    free_port, run, wait_for)

SYS_landlock_create_ruleset = 444      # the same on every architecture
LANDLOCK_CREATE_RULESET_VERSION = 1


def landlock_abi():
    """(abi, None) or (None, why)."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(SYS_landlock_create_ruleset, None, 0,
                       LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 0:
        return None, os.strerror(ctypes.get_errno())
    return abi, None


def read_log(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def no_new_privs(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("NoNewPrivs:"):
                return line.split()[1] == "1"
    return False


async def end_to_end(url, tag):
    """Subscribe, write, read back (also at a past ts).  True when all
    of it worked."""
    c = await Client.open(url, "sandbox-" + tag)
    await c.modify(add=[(1, "db/query", {"table": "s", "order": "desc"})])
    first = await c.mutate("db/insert", {"table": "s",
                                         "doc": {"tag": tag, "n": 1}},
                           request_id=tag + "-1")
    second = await c.mutate("db/patch", {"table": "s", "id": first["value"],
                                         "set": {"n": 2}})
    seen = await c.wait(lambda: any(d.get("tag") == tag and d.get("n") == 2
                                    for d in c.values.get(1) or []), 10)
    now = await c.call("tinyvex/query", {"udfPath": "db/get", "args": {
        "table": "s", "id": first["value"]}})
    past = await c.call("tinyvex/query", {"udfPath": "db/get", "args": {
        "table": "s", "id": first["value"]}, "ts": first["ts"]})
    ok = (seen and now["value"]["n"] == 2 and past["value"]["n"] == 1 and
          second["ts"] > first["ts"] and c.chain_ok)
    await c.close()
    return ok


def main(stk, abi, why):
    gw = stk.gateways[0]
    log = os.path.join(stk.dir, "gatewayd-%d.log" % gw.port)
    text = read_log(log)
    if abi is not None:
        check("landlock: restricted (ABI %d)" % abi in text,
              "gatewayd says it is restricted by Landlock (ABI %d)" % abi)
    else:
        print("this kernel has no Landlock: %s" % why, flush=True)
        check("landlock unavailable:" in text,
              "gatewayd says Landlock is unavailable")
    check(no_new_privs(gw.pid), "gatewayd runs with NoNewPrivs: 1")
    check(run(end_to_end(stk.url(), "a")), "under the sandbox the gateway "
          "serves subscriptions, mutations, queries and reads at a past ts")

    # The writer goes away and comes back: writer.sock is connected again.
    stk.kill_writer()
    os.unlink(os.path.join(stk.dir, "control.sock"))
    stk.start_writer()
    back = wait_for(lambda: (stk.health() or {}).get("writer") is True, 15)
    check(back, "the sandboxed gateway reconnects to a restarted writer")
    check(run(end_to_end(stk.url(), "b")), "and serves end to end again")
    check(gw.poll() is None, "gatewayd is still running")

    # A gateway that starts before its state directory exists.
    later = os.path.join(stk.dir, "later")
    port = free_port()
    glog = os.path.join(stk.dir, "gatewayd-later.log")
    g2 = subprocess.Popen(WRAP + [GATEWAYD, "-d", "-r", later, "-l",
                                  "127.0.0.1:%d" % port],
                          stderr=open(glog, "ab"), stdout=subprocess.DEVNULL)
    g2.port = port
    stk.gateways.append(g2)
    w2 = None
    try:
        waiting = wait_for(lambda: "waiting for the state directory" in
                           read_log(glog) or g2.poll() is not None, 10)
        if abi is not None:
            check(waiting and g2.poll() is None, "a gateway started before "
                  "its state directory waits for it")
        w2 = subprocess.Popen(WRAP + [WRITERD, "-d", "-r", later],
                              stderr=open(os.path.join(stk.dir,
                                                       "writerd-later.log"),
                                          "ab"),
                              stdout=subprocess.DEVNULL)
        up = wait_for(lambda: (stk.health(port) or {}).get("writer") is True,
                      15)
        text = read_log(glog)
        if abi is not None:
            check("landlock: restricted (ABI %d) to %s" % (abi, later) in
                  text, "it restricts itself once the directory is there")
        check(up, "and finds the database and the writer")
        check(run(end_to_end(stk.url(port), "c")), "and serves end to end")
    finally:
        if w2 is not None:
            w2.terminate()
            try:
                w2.wait(10)
            except subprocess.TimeoutExpired:
                w2.kill()
                w2.wait()

    # Stopping needs nothing outside the sandbox either (nor does a leak
    # checker's report at exit, in builds that have one).
    gw.send_signal(signal.SIGTERM)
    try:
        code = gw.wait(30)
    except subprocess.TimeoutExpired:
        code = None
    check(code == 0, "gatewayd stops cleanly on SIGTERM (exit %s)" % code)


abi, why = landlock_abi()
stk = Stack()
try:
    stk.start_writer()
    stk.start_gateway()
    main(stk, abi, why)
finally:
    stk.cleanup()
finish()
