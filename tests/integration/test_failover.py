"""Gateway failover: two gateways on different ports serve one writer.
Clients of the first write with requestIds, several mutations in flight at
a time, and keep a subscription; the first gateway is killed with SIGKILL
in the middle of it.  Each client reconnects to the second gateway with
the same sessionId and maxObservedTs = the newest ts it saw, sees no time
go backwards, resends the requestIds whose answer it never got, and ends
with every intended write applied exactly once; its subscription
converges to the state an observer on the second gateway sees."""

import asyncio
import json
import os
import random

from tvtest import Client, RpcError, Stack, check, db_docs, finish, run

CLIENTS = 3
WRITES = 150           # intended writes per client
WINDOW = 6             # mutations in flight per client
TABLE = "fo"
QUERY = (1, "db/query", {"table": TABLE})
rng = random.Random(int(os.environ.get("TINYVEX_SEED", "0")) or None)


def seen_ts(c):
    """The newest ts a client has seen: transitions and answers."""
    return max([c.version["ts"]] + getattr(c, "answer_ts", [0]))


async def load(c, name, todo, acked, unknown, killed):
    """Send the writes of todo, WINDOW at a time, until the connection
    dies.  Answers go to acked (rid -> id); what got no answer, or
    Unavailable, stays in unknown."""
    c.answer_ts = [0]
    inflight = set()

    async def one(rid, doc):
        if c.closed:
            return
        try:
            r = await c.mutate("db/insert", {"table": TABLE, "doc": doc},
                               request_id=rid)
            acked[rid] = r["value"]
            c.answer_ts.append(r["ts"])
            unknown.discard(rid)
        except RpcError as e:
            if e.kind != "Unavailable":
                raise
        except Exception:  # noqa: BLE001 -- the connection died
            pass

    for rid, doc in todo:
        unknown.add(rid)
        t = asyncio.ensure_future(one(rid, doc))
        inflight.add(t)
        t.add_done_callback(inflight.discard)
        while len(inflight) >= WINDOW:
            await asyncio.wait(list(inflight),
                               return_when=asyncio.FIRST_COMPLETED)
        if killed.is_set() and c.closed:
            break
        await asyncio.sleep(rng.uniform(0, 0.01))
    if inflight:
        await asyncio.wait(list(inflight), timeout=10)


async def main(stk, gw_a, gw_b):
    url_a, url_b = stk.url(gw_a.port), stk.url(gw_b.port)
    observer = await Client.open(url_b, "observer")
    await observer.modify(add=[QUERY])
    clients, plans = [], []
    for k in range(CLIENTS):
        c = await Client.open(url_a, "fo-%d" % k)
        await c.modify(add=[QUERY])
        clients.append(c)
        plans.append([("fo-%d-%d" % (k, i), {"owner": k, "i": i})
                      for i in range(WRITES)])
    acked = [dict() for _ in clients]
    unknown = [set() for _ in clients]
    killed = asyncio.Event()
    tasks = [asyncio.ensure_future(load(c, "c%d" % k, plans[k], acked[k],
                                        unknown[k], killed))
             for k, c in enumerate(clients)]
    # Kill the first gateway once every client is well into its writes.
    await clients[0].wait(lambda: all(len(a) >= WRITES // 3 for a in acked),
                          20)
    gw_a.kill()
    gw_a.wait()
    killed.set()
    await asyncio.gather(*tasks)
    for c in clients:
        await c.wait(lambda: c.closed is not None, 5)
    check(all(c.closed is not None for c in clients),
          "the first gateway's clients saw their connection drop")
    for c in clients:
        # Requests whose send failed: nobody awaits their failure.
        for fut in c.pending.values():
            if fut.done():
                fut.exception()
    n_unknown = sum(len(u) for u in unknown)
    n_acked = sum(len(a) for a in acked)
    print("before failover: %d acknowledged, %d without an answer"
          % (n_acked, n_unknown), flush=True)
    stored = db_docs(os.path.join(stk.dir, "tinyvex.db"), TABLE)
    applied_unanswered = sum(
        1 for k in range(CLIENTS) for rid in unknown[k]
        if any(d.get("owner") == k and "fo-%d-%d" % (k, d["i"]) == rid
               for d in stored.values()))
    print("%d of those had been applied" % applied_unanswered, flush=True)

    # Reconnect to the second gateway: same sessionId, maxObservedTs.
    moved = []
    back_ok = True
    for k, old in enumerate(clients):
        last = seen_ts(old)
        c = await Client.open(url_b, connect=False)
        c.hello = await c.call("tinyvex/connect", {
            "sessionId": "fo-%d" % k, "maxObservedTs": last,
            "connectionCount": 1, "lastCloseReason": "gateway lost"})
        back_ok &= c.hello["serverTs"] >= last
        await c.modify(add=[QUERY])
        back_ok &= c.version["ts"] >= last
        c.answer_ts = [0]
        moved.append(c)
    check(back_ok, "on the second gateway no client sees time go back "
          "past its maxObservedTs")

    # Resend the writes whose outcome is unknown, then the rest of the plan.
    bad = []
    for k, c in enumerate(moved):
        for rid, doc in plans[k]:
            if rid in acked[k] and rid not in unknown[k]:
                continue
            try:
                r = await c.mutate("db/insert", {"table": TABLE, "doc": doc},
                                   request_id=rid)
                acked[k][rid] = r["value"]
                unknown[k].discard(rid)
            except RpcError as e:
                bad.append((rid, str(e)))
    check(not bad, "every resend and later write succeeds%s" %
          ("" if not bad else ": %r" % bad[:3]))

    final = await observer.call("tinyvex/query", {
        "udfPath": "db/query", "args": {"table": TABLE}})
    docs = final["value"]
    count = {}
    for d in docs:
        key = (d["owner"], d["i"])
        count[key] = count.get(key, 0) + 1
    check(len(docs) == CLIENTS * WRITES and
          all(count.get((k, i)) == 1 for k in range(CLIENTS)
              for i in range(WRITES)),
          "every intended write is applied exactly once (%d documents, "
          "%d intended)" % (len(docs), CLIENTS * WRITES))
    ids = {d["_id"]: (d["owner"], d["i"]) for d in docs}
    check(all(ids.get(v) == (k, int(rid.rsplit("-", 1)[1]))
              for k in range(CLIENTS) for rid, v in acked[k].items()),
          "every answer (first sends and resends) names the stored document")

    want = json.dumps(docs, sort_keys=True)
    for k, c in enumerate(moved):
        await c.wait(lambda: json.dumps(c.values.get(1), sort_keys=True)
                     == want, 10)
        check(json.dumps(c.values.get(1), sort_keys=True) == want,
              "client %d's subscription converges on the second gateway"
              % k)
        check(c.chain_ok, "client %d saw no version gap" % k)
    await observer.wait(lambda: json.dumps(observer.values.get(1),
                                           sort_keys=True) == want, 10)
    check(json.dumps(observer.values.get(1), sort_keys=True) == want,
          "the observer on the second gateway converges too")
    check(observer.chain_ok and observer.closed is None,
          "the observer's connection was never disturbed")
    for c in moved + [observer]:
        await c.close()


stk = Stack()
try:
    stk.start_writer()
    a = stk.start_gateway()
    b = stk.start_gateway()
    run(main(stk, a, b))
finally:
    stk.cleanup()
finish()
