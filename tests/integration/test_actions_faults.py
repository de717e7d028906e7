"""Actions when things break (DESIGN section 5, "Providers and actions",
and section 6): a provider killed with SIGKILL mid-call, the provider's
gateway killed, writerd restarted, a call past action_timeout, a caller
that disconnects.  Every caller gets Unavailable with outcome "unknown"
and nothing hangs; the provider is told to cancel where it can be; after
a reconnect the provider serves again (after a writerd restart its
gateway registers it again by itself)."""

import asyncio
import os
import signal
import subprocess
import sys
import time

import tvtest
from tvtest import Client, RpcError, Stack, check, ctl, run, wait_for
from tvaction import open_provider

HERE = os.path.dirname(os.path.abspath(__file__))


async def hang_or_echo(p, params):
    if params["udfPath"].startswith("hang/"):
        await asyncio.Event().wait()
    return {"path": params["udfPath"], "args": params["args"]}


async def expect_unknown(fut, what, limit=15):
    t0 = time.time()
    try:
        m = await asyncio.wait_for(fut, limit)
    except asyncio.TimeoutError:
        check(False, "%s: answered (it hung)" % what)
        return None
    err = m.get("error", {})
    check(err.get("data", {}).get("kind") == "Unavailable" and
          err.get("data", {}).get("outcome") == "unknown",
          "%s: Unavailable, outcome unknown (%r)" % (what, err))
    return time.time() - t0


async def wait_runs(p, n, timeout=10):
    return await p.wait(lambda: len(p.requests) >= n, timeout)


def spawn_provider(url, functions):
    env = dict(os.environ, PYTHONPATH=HERE)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "action_provider.py"),
                             url, functions], stdout=subprocess.PIPE, env=env, text=True)
    line = proc.stdout.readline().strip()
    return proc, line == "ready"




async def faults(st):
    ga, gb = st.gateways[0], st.start_gateway()
    caller = await Client.open(st.url(gb.port), session="caller")

    # 1. The provider process dies mid-call.
    proc, ok = spawn_provider(st.url(ga.port), "hang/*,echo")
    check(ok, "a provider process registered")
    fut = await caller.request("tinyvex/action", {"udfPath": "hang/1", "args": {}})
    line = await asyncio.get_event_loop().run_in_executor(None, proc.stdout.readline)
    check(line.startswith("run hang/1"), "the provider process got the call (%r)" % line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    await expect_unknown(fut, "the provider was killed with SIGKILL mid-call")
    acts = ctl(st, "stats")["actions"]
    check(acts["providers"] == [] and acts["in_flight"] == 0,
          "the killed provider left the registry (%r)" % acts["providers"])
    proc, ok = spawn_provider(st.url(ga.port), "hang/*,echo")
    check(ok, "a provider process registered again after reconnecting")
    r = await caller.call("tinyvex/action", {"udfPath": "echo", "args": {"n": 1}})
    check(r["value"]["path"] == "echo" and r["value"]["pid"] == proc.pid,
          "and serves again (%r)" % r)
    proc.kill()
    proc.wait()
    await asyncio.sleep(0.2)

    # 2. The provider's gateway dies.
    p, _ = await open_provider(st.url(ga.port), hang_or_echo, ["hang/*", "echo"])
    fut = await caller.request("tinyvex/action", {"udfPath": "hang/2", "args": {}})
    check(await wait_runs(p, 1), "the provider got the call")
    port = ga.port
    ga.kill()
    ga.wait()
    st.gateways.remove(ga)
    await expect_unknown(fut, "the provider's gateway was killed mid-call")
    check(await p.wait(lambda: p.closed is not None, 10), "the provider saw its gateway go")
    ga = st.start_gateway(port=port)
    p, _ = await open_provider(st.url(ga.port), hang_or_echo, ["hang/*", "echo"])
    r = await caller.call("tinyvex/action", {"udfPath": "echo", "args": {"n": 2}})
    check(r["value"] == {"path": "echo", "args": {"n": 2}},
          "after reconnecting to the restarted gateway it serves again (%r)" % r)

    # 3. writerd restarts: both links drop.
    fut = await caller.request("tinyvex/action", {"udfPath": "hang/3", "args": {}})
    check(await wait_runs(p, 2), "the provider got the next call")
    run_id = p.requests[-1]["id"]
    st.kill_writer()
    await expect_unknown(fut, "writerd was killed mid-call")
    check(await p.wait(lambda: run_id in p.cancels, 10),
          "the provider was told to cancel when the writer link dropped")
    st.start_writer()
    for g in st.gateways:
        wait_for(lambda: (st.health(g.port) or {}).get("writer") is True, 15)
    served = len(p.requests)
    r = None
    for _ in range(50):
        try:
            r = await caller.call("tinyvex/action", {"udfPath": "echo", "args": {"n": 3}})
            break
        except RpcError as e:
            if e.kind not in ("NotFound", "Unavailable"):
                raise
            await asyncio.sleep(0.1)
    check(r is not None and r["value"]["args"] == {"n": 3} and len(p.requests) == served + 1,
          "after the restart its gateway registered it again and it serves (%r)" % r)

    # 4. The caller leaves.
    c2 = await Client.open(st.url(gb.port), session="leaver")
    f2 = await c2.request("tinyvex/action", {"udfPath": "hang/4", "args": {}})
    f2.add_done_callback(lambda f: f.exception())
    check(await wait_runs(p, served + 2), "the provider got the leaver's call")
    run_id = p.requests[-1]["id"]
    await c2.close()
    check(await p.wait(lambda: run_id in p.cancels, 10),
          "a caller that disconnects cancels its call at the provider")
    check(wait_for(lambda: ctl(st, "stats")["actions"]["in_flight"] == 0, 10),
          "and the provider's slot is free again")
    await p.close()
    await caller.close()


async def timeout(st):
    p, _ = await open_provider(st.url(), hang_or_echo, ["hang/*"])
    c = await Client.open(st.url(), session="caller")
    fut = await c.request("tinyvex/action", {"udfPath": "hang/5", "args": {}})
    check(await wait_runs(p, 1), "the provider got the call")
    took = await expect_unknown(fut, "a call past action_timeout")
    check(took is not None and 0.5 <= took < 10, "after about action_timeout (%.2f s)" % (took or -1))
    check(await p.wait(lambda: p.requests[0]["id"] in p.cancels, 10),
          "the provider was told to cancel the timed-out call")
    acts = ctl(st, "stats")["actions"]
    check(acts["timed_out"] == 1 and acts["providers"][0]["timed_out"] == 1 and
          acts["in_flight"] == 0, "stats count it timed out (%r)" % acts)
    await p.close()
    await c.close()


def main():
    for conf, body in ((None, faults), ("action_timeout 1s\n", timeout)):
        st = Stack(conf=conf)
        try:
            st.start_writer()
            st.start_gateway()
            run(body(st))
        finally:
            st.cleanup()
    tvtest.finish()


main()
