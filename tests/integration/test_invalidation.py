"""Invalidation precision, read from the gateway's rerun counter
(/healthz "reruns"): a write reruns only the queries whose read set holds
one of its keys."""

from tvtest import Client, check, run_stack

SCHEMA = {"tables": {"messages": {"indexes": {"by_thread": ["thread", "n"]}},
                     "docs": {}}}


def reruns(st):
    return st.health()["reruns"]


async def main(st):
    w = await Client.open(st.url(), "writer")
    c = await Client.open(st.url(), "reader")

    # Many subscriptions on distinct documents.
    ids = []
    for i in range(200):
        ids.append((await w.mutate("db/insert", {"table": "docs", "doc": {"i": i}}))["value"])
    await c.modify(add=[(i, "db/get", {"table": "docs", "id": d}) for i, d in enumerate(ids)])
    check(len(c.values) == 200, "200 db/get subscriptions have values")
    r0 = reruns(st)
    await w.mutate("db/patch", {"table": "docs", "id": ids[57], "set": {"i": -1}})
    await c.wait(lambda: c.values[57]["i"] == -1)
    check(reruns(st) - r0 == 1, "a patch of one document reran exactly one of 200 queries (%d)" % (reruns(st) - r0))
    # A rerun whose result is the text it had: nothing goes out.
    r0 = reruns(st)
    nt = len(c.transitions)
    await w.mutate("db/patch", {"table": "docs", "id": ids[58], "set": {"i": 58}})
    await c.call("tinyvex/ping", {})
    check(reruns(st) - r0 == 1, "a patch that left a document as it was reran its query (%d)" % (reruns(st) - r0))
    check(len(c.transitions) == nt, "and sent its reader no transition (%d)" % (len(c.transitions) - nt))
    r0 = reruns(st)
    await w.mutate("db/insert", {"table": "docs", "doc": {"i": 1000}})
    await w.call("tinyvex/ping", {})
    check(reruns(st) - r0 == 0, "an insert of another document reran nothing (%d)" % (reruns(st) - r0))

    # Index range queries, with and without limit.
    for t in "abc":
        for n in range(30):
            await w.mutate("db/insert", {"table": "messages", "doc": {"thread": t, "n": n, "text": "x"}})
    q = {
        1000: {"table": "messages", "index": "by_thread",
               "range": [["thread", "eq", "a"], ["n", "gte", 10], ["n", "lt", 20]]},
        1001: {"table": "messages", "index": "by_thread",
               "range": [["thread", "eq", "b"]], "limit": 5},
        1002: {"table": "messages", "index": "by_thread",
               "range": [["thread", "eq", "c"], ["n", "gt", 25]], "order": "desc"},
    }
    await c.modify(add=[(k, "db/query", v) for k, v in q.items()])
    check([d["n"] for d in c.values[1000]] == list(range(10, 20)), "eq+range query result")
    check([d["n"] for d in c.values[1001]] == list(range(5)), "eq+limit query result")
    check([d["n"] for d in c.values[1002]] == [29, 28, 27, 26], "eq+gt desc query result")
    by_n = {}
    for k in (1000,):
        for d in c.values[k]:
            by_n[d["n"]] = d["_id"]

    r0 = reruns(st)
    await w.mutate("db/insert", {"table": "messages", "doc": {"thread": "z", "n": 1}})
    await w.mutate("db/insert", {"table": "messages", "doc": {"thread": "a", "n": 25}})
    await w.mutate("db/insert", {"table": "messages", "doc": {"thread": "b", "n": 50}})
    await w.mutate("db/insert", {"table": "messages", "doc": {"thread": "c", "n": 3}})
    await w.call("tinyvex/ping", {})
    check(reruns(st) - r0 == 0, "writes outside every scanned interval reran nothing (%d)" % (reruns(st) - r0))
    check(len(c.values[1001]) == 5, "the limited query still has 5 results")

    r0 = reruns(st)
    nt = len(c.transitions)
    await w.mutate("db/patch", {"table": "messages", "id": by_n[15], "set": {"text": "edited"}})
    await c.wait(lambda: any(d.get("text") == "edited" for d in c.values[1000]))
    check(reruns(st) - r0 == 1, "a patch of a non-indexed field inside one interval reran exactly that query (%d)" % (reruns(st) - r0))
    check(len(c.transitions) == nt + 1, "and sent one transition")

    r0 = reruns(st)
    await w.mutate("db/insert", {"table": "messages", "doc": {"thread": "b", "n": -1}})
    await c.wait(lambda: c.values[1001][0]["n"] == -1)
    check(reruns(st) - r0 == 1, "an insert inside the limited query's scanned interval reran it (%d)" % (reruns(st) - r0))
    check([d["n"] for d in c.values[1001]] == [-1, 0, 1, 2, 3], "and its result moved")
    check(c.chain_ok, "versions chained")
    await c.close()
    await w.close()


run_stack(main, schema=SCHEMA)
