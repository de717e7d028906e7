"""Diffs, property-tested.  A writer makes thousands of seeded random
mutations (inserts, patches that append to a string, set or move a
document within an index's order, unsets, replaces, deletes, db/batch
mixes), a few at a time so that group commits and coalescing happen.
Two independent clients subscribe to the same queries of every shape
(db/get, db/query with and without index, range, order and limit, and
db/paginate when the gateway has it): one asked for "diff" and "resume",
the other for nothing.  After every transition, each value either client
holds for a query the transition changed, and every value at every tenth
transition and the last, must equal tinyvex/query of that query at the
transition's endVersion.ts; the diff client must have been sent diffs and
the other none, and equal results must carry equal hashes.

TINYVEX_DIFF_SEED replays a run; the seed is printed on failure."""

import asyncio
import json
import os
import random
import time

from tvtest import Client, check, run_stack
import tvtest

SCALE = float(os.environ.get("TINYVEX_TEST_SCALE", "1"))
MUTATIONS = max(200, int(3000 * SCALE))
MAX_DOCS = 40           # live documents the writer aims to stay around
FULL_EVERY = 10         # every query checked at every tenth transition
VERIFY_BATCH = 64       # tinyvex/query requests per JSON-RPC batch

SCHEMA = {"tables": {"m": {"indexes": {"by_thread": ["thread"], "by_score": ["score"]}}}}

SEED = int(os.environ.get("TINYVEX_DIFF_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
WORDS = ["alpha", "beta", " gamma", " δέλτα", "😀", "\n", "\"q\"", " x", "tok", "\\"]


class Recorder(Client):
    """A client that records, after each transition, the values of the
    queries it changed (and of all queries now and then)."""

    def __init__(self, ws):
        super().__init__(ws)
        self.snaps = []
        self.diff_by_q = {}
        self.hash_values = {}
        self.hash_conflicts = []

    def _transition(self, t, size, chunked=False):
        super()._transition(t, size, chunked)
        n = len(self.transitions)
        qs = set(self.values) if n % FULL_EVERY == 0 else {
            m["queryId"] for m in t["modifications"] if m["queryId"] in self.values}
        self.snaps.append((t["endVersion"]["ts"], {q: self.values[q] for q in qs}))
        for m in t["modifications"]:
            if m["type"] == "QueryDiff":
                self.diff_by_q[m["queryId"]] = self.diff_by_q.get(m["queryId"], 0) + 1
            h = m.get("hash")
            if h is not None and m["queryId"] in self.values:
                v = json.dumps(self.values[m["queryId"]], sort_keys=True)
                if self.hash_values.setdefault(h, v) != v:
                    self.hash_conflicts.append(h)


def queries(have_paginate):
    q = [
        ("db/query", {"table": "m"}),
        ("db/query", {"table": "m", "order": "desc", "limit": 5}),
        ("db/query", {"table": "m", "index": "by_thread", "range": [["thread", "eq", 1]]}),
        ("db/query", {"table": "m", "index": "by_score",
                      "range": [["score", "gte", 20], ["score", "lt", 70]], "order": "desc"}),
        ("db/query", {"table": "m", "index": "by_score", "limit": 8}),
        ("db/query", {"table": "m", "index": "by_thread", "range": [["thread", "eq", 2]],
                      "order": "desc", "limit": 3}),
        ("db/query", {"table": "m", "index": "by_id"}),
    ]
    if have_paginate:
        q.append(("db/paginate", {"table": "m", "numItems": 5}))
        q.append(("db/paginate", {"table": "m", "index": "by_score", "numItems": 4,
                                  "order": "desc"}))
    return q


class Writer:
    """The random mutations, and the model of the documents they make."""

    def __init__(self, rng, client):
        self.rng = rng
        self.c = client
        self.docs = {}

    def new_doc(self):
        r = self.rng
        d = {"thread": r.randrange(4), "score": r.randrange(100),
             "text": r.choice(WORDS)}
        if r.random() < 0.3:
            d["tag"] = r.choice(["a", "b", None, 1.5, [1, 2], {"k": "v"}])
        return d

    def one(self):
        """One random op as (db/batch op name, args), applied to the model;
        None when there is nothing to do it to."""
        r = self.rng
        ids = list(self.docs)
        x = r.random()
        if not ids or x < (0.45 if len(ids) < MAX_DOCS else 0.1):
            return "insert", {"table": "m", "doc": self.new_doc()}
        i = r.choice(ids)
        d = self.docs[i]
        if x < 0.55 and len(ids) > MAX_DOCS / 2:
            del self.docs[i]
            return "delete", {"table": "m", "id": i}
        if x < 0.80:
            t = d.get("text")
            if not isinstance(t, str) or len(t) > 400:
                t = ""
            d["text"] = t + r.choice(WORDS)
            return "patch", {"table": "m", "id": i, "set": {"text": d["text"]}}
        if x < 0.88:
            s = {"score": r.randrange(100)}
            if r.random() < 0.3:
                s["thread"] = r.randrange(4)
            d.update(s)
            return "patch", {"table": "m", "id": i, "set": s}
        if x < 0.94:
            f = r.choice(["score", "tag", "text", "thread"])
            d.pop(f, None)
            return "patch", {"table": "m", "id": i, "unset": [f]}
        nd = self.new_doc()
        self.docs[i] = nd
        return "replace", {"table": "m", "id": i, "doc": nd}

    async def mutate(self):
        """One mutation (sometimes a db/batch of several); its answer."""
        if self.rng.random() < 0.08:
            ops = []
            for _ in range(self.rng.randrange(2, 6)):
                op, args = self.one()
                ops.append(dict(args, op=op))
            r = await self.c.mutate("db/batch", {"ops": ops})
            for o, v in zip(ops, r["value"]):
                if o["op"] == "insert":
                    self.docs[v] = dict(o["doc"])
            return r
        op, args = self.one()
        r = await self.c.mutate("db/" + op, args)
        if op == "insert":
            self.docs[r["value"]] = dict(args["doc"])
        return r


async def batch_query(v, reqs):
    """tinyvex/query for each (udfPath, args, ts) in one JSON-RPC batch;
    the values in order."""
    msgs, futs = [], []
    loop = asyncio.get_event_loop()
    for udf, args, ts in reqs:
        i = v.next_id
        v.next_id += 1
        f = loop.create_future()
        v.pending[i] = f
        futs.append(f)
        msgs.append({"jsonrpc": "2.0", "id": i, "method": "tinyvex/query",
                     "params": {"udfPath": udf, "args": args, "ts": ts}})
    await v.ws.send(json.dumps(msgs))
    out = []
    for f in futs:
        m = await asyncio.wait_for(f, 60)
        out.append(m["result"]["value"] if "result" in m else ("error", m["error"]))
    return out


async def verify(v, name, client, qdefs):
    """Every recorded value against tinyvex/query at its ts; the count
    of wrong ones (the first few printed)."""
    reqs, want = [], []
    ends = {}
    for ts, vals in client.snaps:
        for q, val in vals.items():
            udf, args = qdefs[q]
            if udf == "db/paginate" and isinstance(val, dict):
                # A subscribed page is pinned at the end of its first
                # result: its truth is the page up to that end.
                end = ends.setdefault(q, val.get("continueCursor"))
                args = dict(args, endCursor=end)
            reqs.append((udf, args, ts))
            want.append((q, ts, val))
    bad = 0
    for k in range(0, len(reqs), VERIFY_BATCH):
        got = await batch_query(v, reqs[k:k + VERIFY_BATCH])
        for (q, ts, val), truth in zip(want[k:k + VERIFY_BATCH], got):
            if val != truth:
                bad += 1
                if bad <= 3:
                    print("%s: query %d at ts %d holds %s\n  truth %s" % (
                        name, q, ts, json.dumps(val)[:600], json.dumps(truth)[:600]), flush=True)
    return bad, len(reqs)


async def main(st):
    rng = random.Random(SEED)
    print("seed %d, %d mutations" % (SEED, MUTATIONS), flush=True)
    w = await Client.open(st.url(), "writer")
    v = await Client.open(st.url(), "verifier")
    try:
        await v.call("tinyvex/query", {"udfPath": "db/paginate",
                                       "args": {"table": "m", "numItems": 1}})
        have_paginate = True
    except tvtest.RpcError:
        have_paginate = False
    wr = Writer(rng, w)
    for _ in range(MAX_DOCS // 2):
        await wr.mutate()
    qlist = queries(have_paginate)
    ids = list(wr.docs)[:3]
    qlist += [("db/get", {"table": "m", "id": i}) for i in ids]
    qdefs = {q: d for q, d in enumerate(qlist, 1)}
    a = await Recorder.open(st.url(), "diffs", features=["diff", "resume"])
    b = await Recorder.open(st.url(), "plain")
    check(a.hello.get("features") == ["diff", "resume"],
          "connect granted diff and resume: %s" % a.hello.get("features"))
    check("features" not in b.hello, "a connect without features is answered without them")
    adds = [(q, u, args) for q, (u, args) in qdefs.items()]
    await a.modify(add=adds)
    await b.modify(add=adds)
    t0 = time.monotonic()
    last = 0
    done = 0
    while done < MUTATIONS:
        k = min(rng.randrange(1, 5), MUTATIONS - done)
        rs = await asyncio.gather(*[wr.mutate() for _ in range(k)])
        last = max(last, max(r["ts"] for r in rs))
        done += k
    for c in (a, b):
        await c.wait(lambda c=c: c.version["ts"] >= last, 30)
    elapsed = time.monotonic() - t0
    print("%d mutations in %.1f s; diff client: %d transitions, %d diffs, %d bytes; "
          "plain client: %d transitions, %d bytes" % (
              MUTATIONS, elapsed, len(a.transitions), a.diffs, a.bytes_in,
              len(b.transitions), b.bytes_in), flush=True)
    # One full check at the end, whatever the count.
    for c in (a, b):
        c.snaps.append((c.version["ts"], dict(c.values)))
    ok = True
    for name, c in (("diff", a), ("plain", b)):
        bad, n = await verify(v, name, c, qdefs)
        ok = check(bad == 0, "%s client: %d values checked against tinyvex/query at their "
                   "transition's ts, %d wrong" % (name, n, bad)) and ok
        ok = check(c.chain_ok, "%s client: versions chained" % name) and ok
    ok = check(not a.diff_errors, "every diff applied (%s)" % a.diff_errors[:3]) and ok
    ok = check(a.diffs > MUTATIONS // 4, "the diff client was sent diffs (%d)" % a.diffs) and ok
    shapes = sorted({qdefs[q][0] for q in a.diff_by_q})
    ok = check(shapes == sorted({u for u, _ in qdefs.values()}),
               "diffs of every shape of query: %s" % shapes) and ok
    ok = check(b.diffs == 0 and b.unchanged == 0, "the plain client was sent none") and ok
    ok = check(not b.hashes, "nor any hash") and ok
    ok = check(all(q in a.hashes for q in a.values), "every value the diff client holds has a hash") and ok
    ok = check(not a.hash_conflicts, "one hash, one value (%d conflicts)" % len(a.hash_conflicts)) and ok
    ok = check(a.values == b.values, "both clients end with the same values") and ok
    ok = check(a.bytes_in * 3 < b.bytes_in, "diffs cost less: %d bytes against %d" % (
        a.bytes_in, b.bytes_in)) and ok
    if not ok:
        print("seed %d (TINYVEX_DIFF_SEED=%d replays it)" % (SEED, SEED), flush=True)
    for c in (w, v, a, b):
        await c.close()


run_stack(main, schema=SCHEMA)
