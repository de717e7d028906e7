"""Crash safety: three clients write (single inserts and batches of three
inserts, each with a requestId) while writerd is killed with SIGKILL at
random moments, twenty times in a row, and restarted on the same state
directory each time.

After every kill, the files as the crash left them must pass
PRAGMA integrity_check, hold every mutation acknowledged so far, and hold
no part of a batch without the rest (each batch tags its three documents:
a tag counts 0 or 3).  The gateway must find the writer again by itself.
At the end, the clients resend the requestIds whose outcome they do not
know, and every intended write must be there exactly once, with the ids
the answers named."""

import asyncio
import os
import random
import shutil
import time

from tvtest import (Client, RpcError, Stack, check, db_docs, db_integrity,
                    db_snapshot, finish, run, wait_for)

KILLS = 20
CLIENTS = 3
TABLE = "items"
rng = random.Random(int(os.environ.get("TINYVEX_SEED", "0")) or None)


class Intent:
    """One write a client means to make, under one requestId."""

    def __init__(self, rid, batch):
        self.rid = rid
        self.batch = batch
        self.n = 3 if batch else 1
        if batch:
            self.udf = "db/batch"
            self.args = {"ops": [{"op": "insert", "table": TABLE,
                                  "doc": {"tag": rid, "part": k}}
                                 for k in range(3)]}
        else:
            self.udf = "db/insert"
            self.args = {"table": TABLE, "doc": {"tag": rid, "part": 0}}
        self.ids = None        # from the answer, once acknowledged

    def answer_ids(self, value):
        return list(value) if self.batch else [value]


class State:
    def __init__(self):
        self.intents = {}      # rid -> Intent
        self.pending = {}      # client name -> Intents to resend now
        self.later = {}        # client name -> Intents to resend at the end
        self.acked = 0
        self.errors = {}       # kind -> count
        self.other = []        # unexpected answers


async def attempt(c, st, it):
    """Send it once; True when its outcome is now known."""
    try:
        r = await c.mutate(it.udf, it.args, request_id=it.rid)
    except RpcError as e:
        kind = e.kind
        if e.err.get("data", {}).get("outcome"):
            kind += "/" + e.err["data"]["outcome"]
        st.errors[kind] = st.errors.get(kind, 0) + 1
        if e.kind not in ("Unavailable", "Overloaded"):
            st.other.append((it.rid, e.kind, str(e)))
            return True
        return False
    ids = it.answer_ids(r["value"])
    if it.ids is not None and it.ids != ids:
        st.other.append((it.rid, "replay answered other ids", ids))
    it.ids = ids
    st.acked += 1
    return True


async def worker(c, name, st, stop):
    n = 0
    pending = st.pending.setdefault(name, [])
    later = st.later.setdefault(name, [])
    while not stop.is_set():
        if pending and rng.random() < 0.25:
            it = pending.pop(0)
        else:
            n += 1
            it = Intent("%s-%d" % (name, n), rng.random() < 0.5)
            st.intents[it.rid] = it
        try:
            done = await attempt(c, st, it)
        except Exception as e:  # noqa: BLE001 -- the connection itself
            st.other.append((it.rid, "connection", repr(e)))
            return
        if not done:
            # Half of them wait for the end, across later crashes.
            (pending if rng.random() < 0.5 else later).append(it)
            await asyncio.sleep(0.02)


def tag_counts(docs):
    counts = {}
    for d in docs.values():
        counts[d.get("tag")] = counts.get(d.get("tag"), 0) + 1
    return counts


def crash_image_ok(stk, st, acked_ids):
    """Check the files as the crash left them.  Returns a list of problems."""
    problems = []
    snap = db_snapshot(stk.dir)
    try:
        ic = db_integrity(snap, readonly=False)
        if ic != "ok":
            problems.append("integrity_check: %s" % ic)
        docs = db_docs(snap, TABLE, readonly=False)
    finally:
        shutil.rmtree(os.path.dirname(snap), ignore_errors=True)
    missing = [i for i in acked_ids if i not in docs]
    if missing:
        problems.append("%d acknowledged documents missing" % len(missing))
    for tag, n in tag_counts(docs).items():
        it = st.intents.get(tag)
        if it is None or n != it.n:
            problems.append("tag %s counts %d" % (tag, n))
    return problems


async def main(stk):
    st = State()
    stop = asyncio.Event()
    clients = [await Client.open(stk.url(), "crash-%d" % k)
               for k in range(CLIENTS)]
    tasks = [asyncio.ensure_future(worker(c, "c%d" % k, st, stop))
             for k, c in enumerate(clients)]
    t0 = time.time()
    image_problems = []
    reconnected = 0
    for k in range(KILLS):
        await asyncio.sleep(rng.uniform(0.05, 0.8))
        stk.kill_writer()
        acked_ids = [i for it in list(st.intents.values())
                     if it.ids is not None for i in it.ids]
        image_problems += ["kill %d: %s" % (k, p)
                           for p in crash_image_ok(stk, st, acked_ids)]
        # A stale control.sock would make start_writer return at once.
        try:
            os.unlink(os.path.join(stk.dir, "control.sock"))
        except FileNotFoundError:
            pass
        stk.start_writer()
        if k % 4 == 3 or k == KILLS - 1:
            # Now and then, let the gateway find the writer before the
            # next kill.
            ok = await asyncio.get_event_loop().run_in_executor(
                None, lambda: wait_for(
                    lambda: (stk.health() or {}).get("writer") is True, 10))
            reconnected += ok
    check(not image_problems,
          "after each of %d kills the files pass integrity_check, hold "
          "every acknowledged write and no partial batch%s"
          % (KILLS, "" if not image_problems else
             ": " + "; ".join(image_problems[:5])))
    check(reconnected == (KILLS + 3) // 4,
          "the gateway reconnected to the restarted writer by itself "
          "(%d times checked)" % reconnected)
    # Writes go on after the last restart.
    before = st.acked
    await asyncio.sleep(1.0)
    check(st.acked > before, "mutations succeed after the last restart "
          "(%d more)" % (st.acked - before))
    stop.set()
    await asyncio.gather(*tasks)
    print("%.1f s of load, %d intents, %d acknowledged, %d unknown, "
          "errors %r" % (time.time() - t0, len(st.intents), st.acked,
                         sum(map(len, st.pending.values())) +
                         sum(map(len, st.later.values())), st.errors),
          flush=True)
    check(all(c.closed is None for c in clients),
          "the clients' connections stayed open")

    # Before the resends: nothing half-done in the live database either.
    path = os.path.join(stk.dir, "tinyvex.db")
    docs = db_docs(path, TABLE)
    counts = tag_counts(docs)
    check(all(counts.get(it.rid, 0) in (0, it.n)
              for it in st.intents.values()) and
          all(t in st.intents for t in counts),
          "every write is there whole or not at all (%d documents)"
          % len(docs))
    check(all(i in docs for it in st.intents.values() if it.ids
              for i in it.ids),
          "every acknowledged write is there, under the ids answered")

    # Resend what is unknown, until every outcome is known.
    unknown = [it for v in list(st.pending.values()) + list(st.later.values())
               for it in v]
    print("%d of %d writes of unknown outcome had been applied" %
          (sum(counts.get(it.rid, 0) == it.n for it in unknown),
           len(unknown)), flush=True)
    for k, c in enumerate(clients):
        name = "c%d" % k
        for it in st.pending.get(name, []) + st.later.get(name, []):
            for _ in range(50):
                if await attempt(c, st, it):
                    break
                await asyncio.sleep(0.1)
    check(not st.other, "no unexpected answer%s" %
          ("" if not st.other else ": %r" % st.other[:5]))
    unresolved = [it.rid for it in st.intents.values() if it.ids is None]
    check(not unresolved, "every intended write has a known outcome after "
          "the resends (%d resent)" % (sum(map(len, st.pending.values())) +
                                      sum(map(len, st.later.values()))))
    docs = db_docs(path, TABLE)
    counts = tag_counts(docs)
    wrong = [(it.rid, counts.get(it.rid, 0)) for it in st.intents.values()
             if counts.get(it.rid, 0) != it.n]
    check(not wrong, "every intended write is applied exactly once "
          "(%d writes, %d documents)%s" % (len(st.intents), len(docs),
                                           "" if not wrong else
                                           ": %r" % wrong[:5]))
    by_tag = {}
    for i, d in docs.items():
        by_tag.setdefault(d.get("tag"), []).append(i)
    bad_ids = [it.rid for it in st.intents.values() if it.ids is not None
               and sorted(it.ids) != sorted(by_tag.get(it.rid, []))]
    check(not bad_ids, "the ids answered (also to resends) are the stored "
          "documents' ids")
    check(db_integrity(path) == "ok", "integrity_check on the live database")
    # The gateway serves the same state.
    sample = rng.sample(sorted(docs), min(200, len(docs)))
    same = 0
    for i in sample:
        q = await clients[0].call("tinyvex/query", {
            "udfPath": "db/get", "args": {"table": TABLE, "id": i}})
        same += q["value"] == docs[i]
    check(same == len(sample), "the gateway serves what the file holds "
          "(%d of %d sampled documents)" % (same, len(sample)))
    for c in clients:
        await c.close()


stk = Stack()
try:
    stk.start_writer()
    stk.start_gateway()
    run(main(stk))
finally:
    stk.cleanup()
finish()
