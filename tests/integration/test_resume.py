"""Resume.  A client holding the values of twenty queries reconnects to a
second gateway and adds them again with the hash of each value it holds:
the unchanged ones come back as QueryUnchanged, the changed ones with
their new values, and the bytes it receives are a small fraction of a
full resync.  Hashes are equal across gateways and across a gateway's
restart; knownHash is ignored without "resume"; it matches whatever the
args (a re-added page's end differs); bad features and knownHash are
InvalidParams."""

import copy
import signal

from tvtest import Client, RpcError, check, run_stack

TABLES = 10
DOCS = 12
LIMIT = 5
TEXT = "lorem ipsum dolor sit amet " * 40      # about 1 KB per document


def query_set(ids):
    qs = []
    for i in range(TABLES):
        args = {"table": "t%d" % i, "limit": LIMIT}
        if i == 2:
            args["order"] = "desc"
        qs.append(("db/query", args))
    for i in range(TABLES):
        qs.append(("db/get", {"table": "t%d" % i, "id": ids[i][i]}))
    return {q: d for q, d in enumerate(qs, 1)}


async def subscribe(url, session, qdefs, features, known=None, values=None):
    c = await Client.open(url, session, features=features)
    if values is not None:
        c.values = copy.deepcopy(values)
    await c.modify(add=[(q, u, a) for q, (u, a) in qdefs.items()], known=known)
    return c


async def main(st):
    g2 = st.start_gateway()
    w = await Client.open(st.url(), "writer")
    ids = []
    for t in range(TABLES):
        ids.append([])
        for i in range(DOCS):
            r = await w.mutate("db/insert", {"table": "t%d" % t,
                                             "doc": {"i": i, "text": TEXT}})
            ids[t].append(r["value"])
    qdefs = query_set(ids)

    c1 = await subscribe(st.url(), "first", qdefs, ["resume"])
    check(c1.hello.get("features") == ["resume"], "resume granted: %s" % c1.hello.get("features"))
    check(len(c1.values) == len(qdefs) and all(q in c1.hashes for q in qdefs),
          "every first result carries a hash")
    check(all(isinstance(h, str) and len(h) == 22 for h in c1.hashes.values()),
          "hashes are 22-character strings")
    held, hashes = dict(c1.values), dict(c1.hashes)
    full_bytes = c1.bytes_in
    await c1.close()

    # While it is away: a document of t0 changes, one of t5 that no
    # query shows is deleted.
    await w.mutate("db/patch", {"table": "t0", "id": ids[0][0], "set": {"i": 100}})
    await w.mutate("db/delete", {"table": "t5", "id": ids[5][DOCS - 1]})
    truth = {}
    for q, (u, a) in qdefs.items():
        truth[q] = (await w.call("tinyvex/query", {"udfPath": u, "args": a}))["value"]
    changed = {q for q in qdefs if truth[q] != held[q]}
    check(len(changed) == 2, "%d of %d queries changed" % (len(changed), len(qdefs)))

    # Back, on the other gateway, with the hashes it holds.
    c2 = await subscribe(st.url(g2.port), "first", qdefs, ["resume"], known=hashes, values=held)
    t = c2.transitions[-1]
    kinds = {m["queryId"]: m["type"] for m in t["modifications"]}
    check(all(kinds.get(q) == "QueryUnchanged" for q in qdefs if q not in changed),
          "every unchanged query came back as QueryUnchanged")
    check(all(kinds.get(q) == "QueryUpdated" for q in changed),
          "every changed one with its value")
    check(all(m["hash"] == hashes[m["queryId"]] for m in t["modifications"]
              if m["type"] == "QueryUnchanged"), "QueryUnchanged carries the hash it matched")
    check(c2.values == truth, "the client holds the current value of every query")
    check(not c2.diff_errors, "no QueryUnchanged for a value it did not hold")
    check(c2.bytes_in * 5 < full_bytes, "resume cost %d bytes, a full resync %d" % (
        c2.bytes_in, full_bytes))

    # The same results, hashed by another gateway and after a restart.
    c3 = await subscribe(st.url(g2.port), "third", qdefs, ["resume"])
    check(c3.hashes == c2.hashes, "two connections, one gateway: equal hashes")
    g1 = st.gateways[0]
    g1.send_signal(signal.SIGTERM)
    g1.wait(10)
    g3 = st.start_gateway()
    c4 = await subscribe(st.url(g3.port), "fourth", qdefs, ["resume", "diff"])
    check(c4.hashes == c3.hashes, "a restarted gateway computes the same hashes")
    check(c4.hello.get("features") == ["diff", "resume"], "both features granted")

    # knownHash whatever the args: other args, the same documents.
    u, a = qdefs[1]
    c5 = await Client.open(st.url(g3.port), "fifth", features=["resume"])
    c5.values[1] = c4.values[1]
    await c5.modify(add=[(1, u, dict(a, order="asc", index="by_creation_time"))],
                    known={1: c4.hashes[1]})
    check(c5.transitions[-1]["modifications"][0]["type"] == "QueryUnchanged",
          "knownHash matches the result, not the args")

    # Without resume: knownHash ignored, no hashes.
    c6 = await Client.open(st.url(g3.port), "sixth", features=["diff", "nonesuch"])
    check(c6.hello.get("features") == ["diff"], "an unknown feature is ignored: %s" %
          c6.hello.get("features"))
    await c6.modify(add=[(1, u, a)], known={1: c4.hashes[1]})
    m = c6.transitions[-1]["modifications"][0]
    check(m["type"] == "QueryUpdated" and "hash" not in m,
          "without resume, knownHash is ignored and no hash is sent")

    c7 = await Client.open(st.url(g3.port), "seventh", features=[])
    check(c7.hello.get("features") == [], "an empty features list is answered with one")
    await c7.close()

    # Bad params.
    for feats in ("diff", [1], {"diff": True}):
        c = await Client.open(st.url(g3.port), connect=False)
        try:
            await c.call("tinyvex/connect", {"sessionId": "x", "features": feats})
            check(False, "features %r refused" % (feats,))
        except RpcError as e:
            check(e.kind == "InvalidParams", "features %r: InvalidParams" % (feats,))
        await c.close()
    for kh in (5, "x" * 129, None):
        try:
            await c6.call("tinyvex/modifyQuerySet", {
                "baseVersion": c6.query_set, "newVersion": c6.query_set + 1,
                "modifications": [{"type": "Add", "queryId": 9, "udfPath": u, "args": a,
                                   "knownHash": kh}]})
            check(False, "knownHash %r refused" % (kh,))
        except RpcError as e:
            check(e.kind == "InvalidParams", "knownHash %r: InvalidParams" % (str(kh)[:10],))
    for c in (w, c2, c3, c4, c5, c6):
        await c.close()


run_stack(main)
