"""A result over 2 MiB arrives as tinyvex/transitionChunk parts, none over
chunkBytes, that reassemble into the same transition: the same values as a
one-shot query of the same function."""

import json

from tvtest import Client, check, run_stack


async def main(st):
    w = await Client.open(st.url(), "w")
    c = await Client.open(st.url(), "c")
    chunk = c.hello["limits"]["chunkBytes"]
    # 80 documents of ~40 KiB with multi-byte characters and escapes.
    text = ("héllo \"wörld\" \\ ✓ 😀 " * 2800)[:30000]
    for i in range(80):
        await w.mutate("db/insert", {"table": "big", "doc": {"i": i, "text": text}})
    await c.modify(add=[(1, "db/query", {"table": "big"})])
    chunks = [e for e in c.events if e[0] == "chunk"]
    total = sum(e[2] for e in chunks)
    check(len(chunks) >= 4, "the transition came in %d chunks" % len(chunks))
    check(all(e[2] <= chunk for e in chunks), "no chunk frame is over chunkBytes (%d)" % chunk)
    check(total > 2 * 1024 * 1024, "over 2 MiB in all (%d bytes)" % total)
    check(any(e[0] == "transition" and e[2] for e in c.events), "the chunks reassembled into a transition")
    one = await c.call("tinyvex/query", {"udfPath": "db/query", "args": {"table": "big"}})
    check(json.dumps(one["value"], sort_keys=True) == json.dumps(c.values.get(1), sort_keys=True),
          "the reassembled value equals a one-shot query")
    check(len(c.values[1]) == 80 and c.values[1][5]["text"] == text, "every document intact")
    check(c.chain_ok, "chunked transition chained")
    # A small change afterwards comes as a plain transition again.
    n = len(c.transitions)
    await w.mutate("db/patch", {"table": "big", "id": c.values[1][0]["_id"], "set": {"i": -1}})
    await c.wait(lambda: len(c.transitions) > n)
    check(c.values[1][0]["i"] == -1 and c.chain_ok, "the next change arrives and chains")
    await w.close()
    await c.close()


run_stack(main)
