"""Actions under load (DESIGN section 5, "Providers and actions"): 1,000
concurrent calls from four callers on two gateways over two providers
with concurrency 8 each.  Every call is answered exactly once with its
own value, the split between the providers is within 20 % of even,
neither ever runs more than 8 at once, and writerd's figures add up.
Then, with both providers stalled, calls past the queue bound
(action_queue) are refused Overloaded and the rest finish once the
providers go on."""

import asyncio
import json

from tvtest import Client, check, ctl, run_stack
from tvaction import open_provider

CALLS = 1000
CONCURRENCY = 8
QUEUE = 1000
EXTRA = 20          # calls past the queue bound in the second part
CONF = "action_queue %d\n" % QUEUE


async def main(st):
    g2 = st.start_gateway()
    gate = asyncio.Event()
    gate.set()

    async def work(p, params):
        await gate.wait()
        # Long beside a round trip, so that each provider's share is
        # set by its free slots, not by how the machine schedules it.
        await asyncio.sleep(0.02)
        return {"i": params["args"]["i"]}

    p1, _ = await open_provider(st.url(), work, ["load/*"], session="p1",
                                concurrency=CONCURRENCY)
    p2, _ = await open_provider(st.url(g2.port), work, ["load/*"], session="p2",
                                concurrency=CONCURRENCY)
    callers = []
    for k in range(4):
        callers.append(await Client.open(st.url(None if k % 2 == 0 else g2.port),
                                         session="c%d" % k))

    futs = []
    for i in range(CALLS):
        c = callers[i % len(callers)]
        futs.append((i, await c.request("tinyvex/action",
                                        {"udfPath": "load/work", "args": {"i": i}})))
    answers = await asyncio.wait_for(asyncio.gather(*(f for _, f in futs)), 300)
    right = sum(1 for (i, _), m in zip(futs, answers)
                if m.get("result", {}).get("value") == {"i": i})
    check(right == CALLS, "every call answered with its own value (%d of %d)" % (right, CALLS))
    once = all(sum(1 for e in c.events if e[0] == "answer") == CALLS // len(callers) + 1
               for c in callers)
    check(once, "each call answered exactly once")
    a, b = p1.served, p2.served
    check(a + b == CALLS, "the providers ran %d calls in all (%d + %d)" % (CALLS, a, b))
    even = CALLS / 2
    check(abs(a - even) <= 0.2 * even and abs(b - even) <= 0.2 * even,
          "the split is within 20 %% of even (%d / %d)" % (a, b))
    check(p1.max_inflight <= CONCURRENCY and p2.max_inflight <= CONCURRENCY,
          "never more than %d in flight per provider (%d, %d)" % (
              CONCURRENCY, p1.max_inflight, p2.max_inflight))
    check(p1.max_inflight == CONCURRENCY and p2.max_inflight == CONCURRENCY,
          "and each was kept busy at its concurrency")
    acts = ctl(st, "stats")["actions"]
    check(acts["completed"] == CALLS and acts["queued"] == 0 and acts["in_flight"] == 0,
          "writerd counts them completed, nothing queued or in flight (%r)" %
          {k: v for k, v in acts.items() if k != "providers"})

    # Both providers stalled: 16 run, QUEUE wait, the rest are Overloaded.
    gate.clear()
    total = 2 * CONCURRENCY + QUEUE + EXTRA
    futs = []
    for i in range(total):
        c = callers[i % len(callers)]
        futs.append(await c.request("tinyvex/action",
                                    {"udfPath": "load/stall", "args": {"i": i}}))
    for _ in range(200):
        if sum(1 for f in futs if f.done()) >= EXTRA:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    done = [f.result() for f in futs if f.done()]
    kinds = [m.get("error", {}).get("data", {}).get("kind") for m in done]
    check(len(done) == EXTRA and kinds.count("Overloaded") == EXTRA,
          "past the queue bound: %d Overloaded, the rest wait (%d answered: %r)" % (
              EXTRA, len(done), sorted(set(map(str, kinds)))))
    acts = ctl(st, "stats")["actions"]
    check(acts["queued"] == QUEUE and acts["in_flight"] == 2 * CONCURRENCY,
          "stats show %d queued and %d in flight (%d, %d)" % (
              QUEUE, 2 * CONCURRENCY, acts["queued"], acts["in_flight"]))
    gate.set()
    answers = await asyncio.wait_for(asyncio.gather(*futs), 300)
    ok = sum(1 for m in answers if "result" in m)
    check(ok == total - EXTRA, "once the providers go on, the waiting calls finish (%d)" % ok)
    for x in callers + [p1, p2]:
        await x.close()


run_stack(main, conf=CONF)
