"""A provider in its own process, for the tests that kill it: connects to
URL, provides FUNCTIONS (comma-separated), prints "ready" and then "run ID"
for each call.  A call under hang/ never answers; any other returns
{"pid": its pid, "path": udfPath, "args": args}."""

import asyncio
import os
import sys

from tvaction import open_provider


async def handler(p, params):
    print("run", params["udfPath"], flush=True)
    if params["udfPath"].startswith("hang/"):
        await asyncio.Event().wait()
    return {"pid": os.getpid(), "path": params["udfPath"], "args": params["args"]}


async def main(url, functions):
    p, _ = await open_provider(url, handler, functions.split(","), session="proc")
    print("ready", flush=True)
    await p.reader


asyncio.run(main(sys.argv[1], sys.argv[2]))
