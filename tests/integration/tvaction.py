"""Provider side of the integration tests of actions: a Client that
answers tinyvex/runAction requests with an async handler, records what it
was sent and cancelled, and counts the calls it runs at once."""

import asyncio
import json

from tvtest import Client


class ActionError(Exception):
    """Raised by a handler: the provider answers with a JSON-RPC error."""

    def __init__(self, message, data=None, code=1):
        super().__init__(message)
        self.message = message
        self.data = data
        self.code = code


class Provider(Client):
    """handler(provider, params) -> value; raise ActionError to fail.
    A cancelAction cancels the handler's task (no answer is sent)."""

    def __init__(self, ws):
        super().__init__(ws)
        self.handler = None
        self.tasks = {}
        self.requests = []
        self.cancels = []
        self.inflight = 0
        self.max_inflight = 0
        self.served = 0
        self.answer = True

    def _handle(self, m, size):
        if isinstance(m, dict) and m.get("method") == "tinyvex/runAction":
            self.requests.append(m)
            self.tasks[m["id"]] = asyncio.ensure_future(self._run(m))
            self._wake()
            return
        if isinstance(m, dict) and m.get("method") == "tinyvex/cancelAction":
            cid = m["params"]["id"]
            self.cancels.append(cid)
            t = self.tasks.pop(cid, None)
            if t is not None:
                t.cancel()
            self._wake()
            return
        super()._handle(m, size)

    async def _run(self, m):
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            try:
                value = await self.handler(self, m["params"])
                resp = {"jsonrpc": "2.0", "id": m["id"], "result": value}
            except ActionError as e:
                err = {"code": e.code, "message": e.message}
                if e.data is not None:
                    err["data"] = e.data
                resp = {"jsonrpc": "2.0", "id": m["id"], "error": err}
        except asyncio.CancelledError:
            return
        finally:
            self.inflight -= 1
        self.tasks.pop(m["id"], None)
        self.served += 1
        if self.answer:
            try:
                await self.ws.send(json.dumps(resp))
            except Exception:  # noqa: BLE001 -- closed meanwhile
                pass

    async def provide(self, functions, **kw):
        p = {"functions": functions}
        p.update(kw)
        return await self.call("tinyvex/provide", p)


async def open_provider(url, handler, functions, session="prov", **kw):
    p = await Provider.open(url, session=session)
    p.handler = handler
    r = await p.provide(functions, **kw)
    return p, r
