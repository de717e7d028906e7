"""SIGTERM: the gateway closes every client with 1001 and exits within a
few seconds; writerd stops cleanly too.  Both are started with the
signals they wait for blocked, as a launcher thread that blocks signals
would start them: a blocked mask survives exec, and the daemons must
unblock it."""

import asyncio
import signal
import time

from tvtest import Client, check, run_stack


async def main(st):
    cs = [await Client.open(st.url(), "s%d" % i) for i in range(5)]
    for c in cs:
        await c.modify(add=[(1, "db/query", {"table": "t"})])
    g = st.gateways[0]
    t0 = time.time()
    g.send_signal(signal.SIGTERM)
    for c in cs:
        await c.wait(lambda: c.closed is not None, 5)
    check(all(c.closed == 1001 for c in cs), "every client was closed with 1001 (%s)" % [c.closed for c in cs])
    rc = await asyncio.get_event_loop().run_in_executor(None, lambda: g.wait(10))
    check(rc == 0, "gatewayd exited 0")
    check(time.time() - t0 < 5, "within 5 s (%.2f s)" % (time.time() - t0))
    st.writer.send_signal(signal.SIGTERM)
    rc = await asyncio.get_event_loop().run_in_executor(None, lambda: st.writer.wait(10))
    check(rc == 0, "writerd exited 0 on SIGTERM")


# Inherited by the daemons through fork and exec.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
run_stack(main)
