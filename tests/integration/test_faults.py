"""Storage faults under SQLite: writerd runs with TINYVEX_FAULT_FILE, and
the test flips that file between "full", "ioerr", "busy", "nomem" and
nothing while clients write.  While a fault is on, a mutation fails with
Unavailable, says it was not committed, and leaves nothing behind (no
document of it, no part of a batch); its requestId is not recorded, so a
resend after the fault succeeds.  Once the fault clears, writerd goes on
serving without a restart and the gateway sees the new writes.  A client
writing all along ends with every acknowledged write present, no partial
batch, and, after resending what failed, each write applied once."""

import asyncio
import os
import sys
import time

from tvtest import (Client, RpcError, Stack, check, db_docs, db_integrity,
                    finish, run)

TABLE = "f"
BIG = "fbig"          # large documents, out of the watched table
KINDS = ["full", "ioerr", "busy", "nomem"]


def set_fault(stk, word):
    tmp = stk.fault_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(word)
    os.replace(tmp, stk.fault_file)
    # The shim re-reads the file at most every 10 ms.
    time.sleep(0.05)


def batch(tag, n=3, size=0, table=TABLE):
    return {"ops": [{"op": "insert", "table": table,
                     "doc": {"tag": tag, "part": k, "pad": "x" * size}}
                    for k in range(n)]}


async def expect_unavailable(c, udf, args, rid, what):
    try:
        r = await c.mutate(udf, args, request_id=rid)
        check(False, "%s fails while the fault is on (it answered %r)"
              % (what, r))
        return None
    except RpcError as e:
        data = e.err.get("data", {})
        check(e.kind == "Unavailable" and
              "not committed" in e.err.get("message", "") and
              data.get("outcome") == "notCommitted",
              "%s fails with Unavailable, not committed (%s: %s, %r)"
              % (what, e.kind, e.err.get("message"), data))
        return e


async def background(c, st, stop):
    """Batches of three, tagged, with requestIds; failures kept."""
    n = 0
    while not stop.is_set():
        n += 1
        rid = "bg-%d" % n
        st["sent"].append(rid)
        try:
            r = await c.mutate("db/batch", batch(rid), request_id=rid)
            st["acked"][rid] = r["value"]
        except RpcError as e:
            st["failed"].append((rid, e.kind))
        await asyncio.sleep(0.005)


async def main(stk):
    dbpath = os.path.join(stk.dir, "tinyvex.db")
    c = await Client.open(stk.url(), "faults")
    watcher = await Client.open(stk.url(), "watcher")
    await watcher.modify(add=[(1, "db/query", {"table": TABLE})])
    await c.mutate("db/insert", {"table": TABLE, "doc": {"tag": "seed"}})
    bgc = await Client.open(stk.url(), "background")
    st = {"sent": [], "acked": {}, "failed": []}
    stop = asyncio.Event()
    bg = asyncio.ensure_future(background(bgc, st, stop))

    for kind in KINDS:
        set_fault(stk, kind)
        t0 = time.time()
        await expect_unavailable(c, "db/insert",
                                 {"table": TABLE, "doc": {"tag": kind + "-1"}},
                                 kind + "-1", "%s: an insert" % kind)
        await expect_unavailable(c, "db/batch", batch(kind + "-b"),
                                 kind + "-b", "%s: a batch" % kind)
        # Large enough to spill SQLite's page cache inside a statement.
        await expect_unavailable(c, "db/batch",
                                 batch(kind + "-big", 12, 80000, BIG),
                                 kind + "-big", "%s: a large batch" % kind)
        took = time.time() - t0
        docs = db_docs(dbpath, TABLE)
        docs.update(db_docs(dbpath, BIG))
        tags = [d.get("tag") for d in docs.values()]
        check(not any(t in tags for t in (kind + "-1", kind + "-b",
                                          kind + "-big")),
              "%s: nothing of the failed mutations is in the database" % kind)
        check(stk.writer.poll() is None, "%s: writerd is still running "
              "(the failures took %.1f s)" % (kind, took))
        set_fault(stk, "")
        # The same requestIds now succeed: failures were not recorded.
        ok = True
        try:
            r1 = await c.mutate("db/insert", {"table": TABLE,
                                              "doc": {"tag": kind + "-1"}},
                                request_id=kind + "-1")
            r2 = await c.mutate("db/batch", batch(kind + "-b"),
                                request_id=kind + "-b")
            r3 = await c.mutate("db/batch",
                                batch(kind + "-big", 12, 80000, BIG),
                                request_id=kind + "-big")
        except RpcError as e:
            ok = False
            print("after %s: %s" % (kind, e), flush=True)
        check(ok, "%s cleared: the same requestIds succeed" % kind)
        if ok:
            want = {r1["value"]} | set(r2["value"])
            seen = await watcher.wait(lambda: want <= {
                d["_id"] for d in watcher.values.get(1) or []}, 10)
            big = await c.call("tinyvex/query", {
                "udfPath": "db/query", "args": {"table": BIG}})
            seen = seen and set(r3["value"]) <= {d["_id"]
                                                 for d in big["value"]}
            check(seen, "%s cleared: the gateway's subscription shows the "
                  "new writes" % kind)
        check((stk.health() or {}).get("writer") is True,
              "%s cleared: the gateway's writer link is up" % kind)

    await asyncio.sleep(0.3)
    stop.set()
    await bg
    failed_kinds = {}
    for _, k in st["failed"]:
        failed_kinds[k] = failed_kinds.get(k, 0) + 1
    print("background: %d batches, %d acknowledged, failures %r"
          % (len(st["sent"]), len(st["acked"]), failed_kinds), flush=True)
    check(set(failed_kinds) <= {"Unavailable"},
          "the background writer saw only Unavailable failures")
    docs = db_docs(dbpath, TABLE)
    count = {}
    for i, d in docs.items():
        count[d.get("tag")] = count.get(d.get("tag"), 0) + 1
    check(all(all(i in docs for i in ids) for ids in st["acked"].values()),
          "every acknowledged background batch is in the database")
    check(all(count.get(rid, 0) in (0, 3) for rid in st["sent"]),
          "no background batch is there in part")
    check(all(count.get(rid, 0) == 0 for rid, _ in st["failed"]
              if rid not in st["acked"]),
          "no failed background batch is there at all")
    for rid, _ in st["failed"]:
        if rid not in st["acked"]:
            r = await bgc.mutate("db/batch", batch(rid), request_id=rid)
            st["acked"][rid] = r["value"]
    docs = db_docs(dbpath, TABLE)
    count = {}
    for i, d in docs.items():
        count[d.get("tag")] = count.get(d.get("tag"), 0) + 1
    check(all(count.get(rid) == 3 for rid in st["sent"]),
          "after resending the failed ones, every background batch is "
          "there exactly once")
    check(db_integrity(dbpath) == "ok", "integrity_check is ok")
    with open(os.path.join(stk.dir, "writerd.log"), "rb") as f:
        log = f.read().decode("utf-8", "replace")
    check("fault injection on" in log, "writerd says fault injection is on")
    for cl in (c, watcher, bgc):
        await cl.close()


stk = Stack()
stk.fault_file = os.path.join(stk.dir, "fault")
try:
    open(stk.fault_file, "w").close()
    os.environ["TINYVEX_FAULT_FILE"] = stk.fault_file
    try:
        stk.start_writer()
    finally:
        del os.environ["TINYVEX_FAULT_FILE"]
    with open(os.path.join(stk.dir, "writerd.log"), "rb") as f:
        if b"has no storage fault injection" in f.read():
            print("skip: writerd was built without fault injection",
                  flush=True)
            sys.exit(0)
    stk.start_gateway()
    run(main(stk))
finally:
    stk.cleanup()
finish()
