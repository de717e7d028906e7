"""Pinned live pages (db/paginate), a property test: a seeded random
stream of inserts, deletes and patches that move documents in the index
order, while one client holds three subscribed pages of 25 in ascending
order and another three in descending order.  After every transition the
concatenated pages must equal the whole db/query result at that
transition's ts, with no document twice and none missing, and every
page's continueCursor must stay the end it was pinned at.  A client that
reconnects and re-adds the pages with those ends as endCursor gets the
same pages.

TINYVEX_SEED picks the seed (printed at the start and on failure);
TINYVEX_TEST_SCALE (default 1) scales the number of writes."""

import os
import random

from tvtest import Client, check, run_stack

SCALE = float(os.environ.get("TINYVEX_TEST_SCALE", "1"))
SEED = int(os.environ.get("TINYVEX_SEED", random.randrange(1 << 30)))
STEPS = max(40, int(1000 * SCALE))
PAGE = 25
START_DOCS = 60          # three pages of 25: the third ends the index
SCHEMA = {"tables": {"items": {"indexes": {"by_k": ["k"]}}}}
BASE = {"table": "items", "index": "by_k"}


class Holder:
    """A client holding three pages; it records, at every transition,
    the pages as they stand then."""

    def __init__(self, client, order, first_qid):
        self.c = client
        self.order = order
        self.qids = [first_qid + i for i in range(3)]
        self.ends = []
        self.snapshots = []
        orig = client._transition

        def hook(t, size, chunked=False):
            orig(t, size, chunked)
            self.snapshots.append((t["endVersion"]["ts"], self.pages()))
        client._transition = hook

    def pages(self):
        return [self.c.values.get(q) for q in self.qids]

    async def subscribe(self):
        """Page after page, each starting at the previous one's end."""
        cursor = None
        for q in self.qids:
            args = dict(BASE, order=self.order, numItems=PAGE, cursor=cursor)
            await self.c.modify(add=[(q, "db/paginate", args)])
            await self.c.wait(lambda: q in self.c.values)
            cursor = self.c.values[q]["continueCursor"]
            self.ends.append(cursor)


def concat(pages):
    out = []
    for p in pages:
        if p is None:
            return None
        out.extend(p["page"])
    return out


async def full_at(c, ts, order):
    r = await c.call("tinyvex/query", {"udfPath": "db/query", "args": dict(
        BASE, order=order), "ts": ts})
    return r["value"]


async def check_snapshots(h, reader, failures):
    """Each recorded transition against db/query at its ts."""
    for ts, pages in h.snapshots:
        docs = concat(pages)
        if docs is None:
            failures.append("%s: a page without a value at ts %d" % (h.order, ts))
            continue
        want = await full_at(reader, ts, h.order)
        ids = [d["_id"] for d in docs]
        if len(set(ids)) != len(ids):
            failures.append("%s: a document twice at ts %d" % (h.order, ts))
        if docs != want:
            missing = set(d["_id"] for d in want) - set(ids)
            failures.append("%s: pages differ from db/query at ts %d (%d vs %d "
                            "documents, %d missing)" % (h.order, ts, len(docs),
                                                       len(want), len(missing)))
        for i, p in enumerate(pages):
            if p["continueCursor"] != h.ends[i]:
                failures.append("%s: page %d moved its end at ts %d" % (h.order, i, ts))
        if not pages[2]["isDone"]:
            failures.append("%s: the last page is not done at ts %d" % (h.order, ts))
    h.snapshots.clear()


async def readd(url, h, name):
    """A new connection re-adding h's pages with their ends."""
    c = await Client.open(url, name)
    mods = []
    cursor = None
    for i, q in enumerate(h.qids):
        mods.append((q, "db/paginate", dict(BASE, order=h.order, numItems=PAGE,
                                            cursor=cursor, endCursor=h.ends[i])))
        cursor = h.ends[i]
    await c.modify(add=mods)
    same = [c.values.get(q) for q in h.qids] == h.pages()
    await c.close()
    return same


async def main(st):
    print("seed %d, %d writes" % (SEED, STEPS), flush=True)
    rng = random.Random(SEED)
    w = await Client.open(st.url(), "writer")
    ids = []
    ops = [{"op": "insert", "table": "items",
            "doc": {"k": rng.randrange(1000), "v": 0}} for _ in range(START_DOCS)]
    ids.extend((await w.mutate("db/batch", {"ops": ops}))["value"])

    asc = Holder(await Client.open(st.url(), "asc"), "asc", 10)
    desc = Holder(await Client.open(st.url(), "desc"), "desc", 20)
    await asc.subscribe()
    await desc.subscribe()
    check([len(p["page"]) for p in asc.pages()] == [25, 25, 10],
          "three ascending pages of 25, 25 and 10")
    check([p["isDone"] for p in asc.pages()] == [False, False, True],
          "only the third is done")
    check([len(p["page"]) for p in desc.pages()] == [25, 25, 10],
          "three descending pages of 25, 25 and 10")

    failures = []
    for h in (asc, desc):
        h.snapshots.clear()
    counts = {"insert": 0, "delete": 0, "move": 0, "field": 0}
    transitions0 = len(asc.c.transitions) + len(desc.c.transitions)
    for step in range(STEPS):
        r = rng.random()
        if r < 0.35 or len(ids) < 10:
            res = await w.mutate("db/insert", {"table": "items", "doc": {
                "k": rng.randrange(1000), "v": step}})
            ids.append(res["value"])
            counts["insert"] += 1
        elif r < 0.6:
            victim = ids.pop(rng.randrange(len(ids)))
            res = await w.mutate("db/delete", {"table": "items", "id": victim})
            counts["delete"] += 1
        elif r < 0.9:
            # A k no document had: every write changes a page.
            k = rng.randrange(1000) + (step + 1) / 10000
            res = await w.mutate("db/patch", {"table": "items", "id": rng.choice(ids),
                                              "set": {"k": k}})
            counts["move"] += 1
        else:
            res = await w.mutate("db/patch", {"table": "items", "id": rng.choice(ids),
                                              "set": {"v": -step - 1}})
            counts["field"] += 1
        for h in (asc, desc):
            if not await h.c.wait(lambda: h.c.version["ts"] >= res["ts"], 10):
                failures.append("%s: no transition reached ts %d" % (h.order, res["ts"]))
            await check_snapshots(h, w, failures)
        if step % 100 == 50:
            for h in (asc, desc):
                if not await readd(st.url(), h, "re-%s-%d" % (h.order, step)):
                    failures.append("%s: re-added pages differ at step %d" % (h.order, step))
        if len(failures) > 5:
            break
    transitions = len(asc.c.transitions) + len(desc.c.transitions) - transitions0
    print("writes %r, %d transitions checked" % (counts, transitions), flush=True)
    for f in failures[:10]:
        print("  " + f, flush=True)
    check(not failures, "every transition of both holders matched db/query at its "
          "ts, no document twice, ends pinned (seed %d)" % SEED)
    check(transitions >= STEPS, "the holders saw a transition per write (%d)" % transitions)
    sizes = [len(p["page"]) for p in asc.pages()]
    check(sum(sizes) == len(ids), "the pages hold all %d documents (%r)" % (len(ids), sizes))
    for h in (asc, desc):
        check(await readd(st.url(), h, "re-" + h.order),
              "%s pages re-added with their endCursor are the same pages" % h.order)
        check(h.c.chain_ok, "%s holder's versions chained" % h.order)
    if failures:
        print("seed %d failed; rerun with TINYVEX_SEED=%d" % (SEED, SEED), flush=True)
    for c in (w, asc.c, desc.c):
        await c.close()


run_stack(main, schema=SCHEMA)
