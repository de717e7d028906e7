"""Two clients, live sync: writes from either appear in both, in commit
order, with chained versions; adding and removing queries in one
modifyQuerySet gives QueryRemoved and the new results in one transition;
a write that changes none of a client's results sends it nothing."""

from tvtest import Client, check, run_stack


async def main(st):
    a = await Client.open(st.url(), "sa")
    b = await Client.open(st.url(), "sb")
    check(a.hello["protocol"] == 1 and isinstance(a.hello["serverTs"], int),
          "connect answers protocol 1 with an integer serverTs")
    check(set(a.hello["limits"]) == {"maxMessageBytes", "maxQueries", "chunkBytes"},
          "connect reports the limits")

    # Both watch all messages; b also watches one document of another table.
    await a.modify(add=[(1, "db/query", {"table": "messages"})])
    await b.modify(add=[(1, "db/query", {"table": "messages"}),
                        (2, "db/query", {"table": "other"})])
    check(a.values.get(1) == [] and b.values.get(1) == [] and b.values.get(2) == [],
          "subscriptions to tables that do not exist yet are empty")

    ids = []
    for i in range(10):
        c = a if i % 2 == 0 else b
        r = await c.mutate("db/insert", {"table": "messages", "doc": {"n": i, "by": "ab"[i % 2]}})
        check(isinstance(r["ts"], int) and isinstance(r["value"], str), "insert %d answered with id and ts" % i)
        ids.append(r["value"])
    await a.wait(lambda: len(a.values.get(1, [])) == 10)
    await b.wait(lambda: len(b.values.get(1, [])) == 10)
    check([d["n"] for d in a.values[1]] == list(range(10)), "a sees all ten writes in commit order")
    check([d["n"] for d in b.values[1]] == list(range(10)), "b sees all ten writes in commit order")
    check([d["_id"] for d in a.values[1]] == ids, "ids match the insert answers")
    check(a.chain_ok and b.chain_ok, "every transition starts where the previous ended")
    tss = [t["endVersion"]["ts"] for t in a.transitions]
    check(tss == sorted(tss), "transition ts never goes backwards")

    # A write to a table b watches and a does not: a gets nothing.
    na = len(a.transitions)
    await b.mutate("db/insert", {"table": "other", "doc": {"x": 1}})
    await b.wait(lambda: len(b.values.get(2, [])) == 1)
    check(len(b.values[2]) == 1, "b sees the write to the other table")
    await a.call("tinyvex/ping", {})
    check(len(a.transitions) == na, "a is sent no transition for a write that changed none of its results")

    # Remove and add in one request: one transition with both.
    nb = len(b.transitions)
    doc_id = ids[3]
    await b.modify(add=[(3, "db/get", {"table": "messages", "id": doc_id})], remove=[2])
    t = b.transitions[-1]
    kinds = sorted(m["type"] for m in t["modifications"])
    check(len(b.transitions) == nb + 1, "modifyQuerySet produced exactly one transition")
    check(kinds == ["QueryRemoved", "QueryUpdated"], "it carries QueryRemoved and the new result")
    check(t["endVersion"]["querySet"] == b.query_set, "its endVersion carries the new query set version")
    check(b.values.get(3, {}).get("n") == 3 and 2 not in b.values, "the new query has its value, the removed one is gone")

    # Patch the watched document: both see it; the get follows.
    await a.mutate("db/patch", {"table": "messages", "id": doc_id, "set": {"n": 33}})
    await b.wait(lambda: b.values.get(3, {}).get("n") == 33)
    check(b.values[3]["n"] == 33, "b's db/get shows a's patch")
    await a.wait(lambda: a.values[1][3]["n"] == 33)
    check(a.values[1][3]["n"] == 33, "a's query shows its own patch")
    await a.mutate("db/delete", {"table": "messages", "id": doc_id})
    await b.wait(lambda: b.values.get(3, 0) is None)
    check(b.values.get(3, 0) is None, "db/get turns null after the delete")
    check(a.chain_ok and b.chain_ok, "versions still chained at the end")
    await a.close()
    await b.close()


run_stack(main)
