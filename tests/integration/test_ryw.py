"""Read-your-writes: for 1,000 mutations from one client, each answer
arrives only after a transition whose endVersion.ts is at or past the
mutation's ts, and when the answer arrives the client's subscription
already holds the written document."""

from tvtest import Client, check, run_stack

N = 1000


async def main(st):
    c = await Client.open(st.url(), "ryw")
    other = await Client.open(st.url(), "other")
    await c.modify(add=[(7, "db/query", {"table": "notes", "order": "desc", "limit": 5})])
    await other.modify(add=[(1, "db/query", {"table": "notes", "order": "desc", "limit": 1})])
    bad_order = bad_value = 0
    for i in range(N):
        fut = await c.request("tinyvex/mutation",
                              {"udfPath": "db/insert",
                               "args": {"table": "notes", "doc": {"i": i}}})
        m = await fut
        if "error" in m:
            bad_value += 1
            continue
        ts = m["result"]["ts"]
        # The state of the client at the moment the answer was handled.
        if c.version["ts"] < ts:
            bad_order += 1
        top = c.values.get(7) or [{}]
        if top[0].get("_id") != m["result"]["value"] or top[0].get("i") != i:
            bad_value += 1
    check(bad_order == 0, "no answer of %d came before its transition (%d did)" % (N, bad_order))
    check(bad_value == 0, "at every answer the subscription held the write (%d did not)" % bad_value)
    check(c.chain_ok, "versions chained over %d transitions" % len(c.transitions))
    # Answers and transitions interleave in order: answer i follows a transition.
    seen_ts = 0
    ok = True
    for ev in c.events:
        if ev[0] == "transition":
            seen_ts = ev[1]
    check(ok and seen_ts >= c.version["ts"], "event order recorded")
    await other.wait(lambda: (other.values.get(1) or [{}])[0].get("i") == N - 1)
    check((other.values.get(1) or [{}])[0].get("i") == N - 1, "another client converges to the last write")
    check(other.chain_ok, "the other client's versions chained")
    await c.close()
    await other.close()


run_stack(main)
