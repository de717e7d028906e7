// The socket manager without a network: a fake WebSocket and a clock the
// test moves.  Backoff after a close, reconnect at once on "online" and on
// the page becoming visible, a connection silent for deadAfterMs is dead,
// an error event alone ends the attempt.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TinyvexClient } from "../tinyvex.js";

let sockets;
class FakeWebSocket {
	constructor(url, protocol) {
		this.url = url;
		this.protocol = protocol;
		this.sent = [];
		this.closed = null;
		sockets.push(this);
	}

	send(text) {
		this.sent.push(JSON.parse(text));
	}

	close(code) {
		this.closed = code;
	}

	/* The server's side: open, and answer the connect. */
	accept() {
		this.onopen();
		const c = this.sent.find((m) => m.method === "tinyvex/connect");
		this.onmessage({ data: JSON.stringify({ jsonrpc: "2.0", id: c.id,
		    result: { protocol: 1, serverTs: 1, gatewayId: "g", limits: {},
		    features: [] } }) });
	}
}

function fakeClock() {
	const c = { t: 0, timers: [] };
	c.now = () => c.t;
	c.random = () => 0.5;
	c.setTimeout = (f, ms) => {
		const timer = { f, at: c.t + ms, done: false };
		c.timers.push(timer);
		return timer;
	};
	c.clearTimeout = (timer) => { timer.done = true; };
	c.advance = (ms) => {
		const end = c.t + ms;
		for (;;) {
			const due = c.timers.filter((x) => !x.done && x.at <= end)
			    .sort((x, y) => x.at - y.at)[0];
			if (due === undefined)
				break;
			c.t = due.at;
			due.done = true;
			due.f();
		}
		c.t = end;
	};
	return c;
}

before(() => {
	globalThis.window = new EventTarget();
	globalThis.document = new EventTarget();
	globalThis.document.visibilityState = "hidden";
});

after(() => {
	delete globalThis.window;
	delete globalThis.document;
});

function setup() {
	sockets = [];
	const clock = fakeClock();
	const client = new TinyvexClient("ws://x/sync", { WebSocket: FakeWebSocket,
	    clock, deadAfterMs: 45000 });
	return { client, clock };
}

test("a close waits the backoff; online and visible reconnect at once", () => {
	const { client, clock } = setup();
	assert.equal(sockets.length, 1);
	assert.equal(sockets[0].protocol, "tinyvex.v1");
	sockets[0].accept();
	assert.equal(client.connectionState().status, "connected");
	sockets[0].onclose({ code: 1006, reason: "" });
	let st = client.connectionState();
	assert.equal(st.status, "disconnected");
	assert.equal(st.lastCloseReason, "close 1006");
	assert.equal(st.nextRetryAt, 50, "full jitter: 0.5 of 100 ms");
	clock.advance(49);
	assert.equal(sockets.length, 1);
	clock.advance(1);
	assert.equal(sockets.length, 2);
	/* Refused: the backoff doubles. */
	sockets[1].onclose({ code: 1006, reason: "" });
	st = client.connectionState();
	assert.equal(st.retries, 2);
	assert.equal(st.nextRetryAt - clock.now(), 100);
	window.dispatchEvent(new Event("online"));
	assert.equal(sockets.length, 3, "online: at once");
	sockets[2].onclose({ code: 1006, reason: "" });
	document.dispatchEvent(new Event("visibilitychange"));
	assert.equal(sockets.length, 3, "not while hidden");
	document.visibilityState = "visible";
	document.dispatchEvent(new Event("visibilitychange"));
	assert.equal(sockets.length, 4, "visible: at once");
	document.visibilityState = "hidden";
	sockets[3].accept();
	assert.equal(client.connectionState().retries, 0,
	    "reset once resumed (no queries to re-add)");
	window.dispatchEvent(new Event("online"));
	assert.equal(sockets.length, 4, "online while connected changes nothing");
	client.close();
	assert.equal(sockets[3].closed, 1000);
	window.dispatchEvent(new Event("online"));
	assert.equal(sockets.length, 4, "closed stays closed");
});

test("45 s without a frame is a dead connection; any frame keeps it alive", () => {
	const { client, clock } = setup();
	sockets[0].accept();
	clock.advance(30000);
	sockets[0].onmessage({ data: JSON.stringify({ jsonrpc: "2.0",
	    method: "tinyvex/ping", params: { serverTs: 1 } }) });
	clock.advance(30000);
	assert.equal(client.connectionState().status, "connected");
	clock.advance(15000);
	const st = client.connectionState();
	assert.equal(st.status, "disconnected");
	assert.equal(st.lastCloseReason, "no frame for 45000 ms");
	assert.equal(sockets[0].closed, 1000);
	client.close();
});

test("an error event alone ends the attempt; with a close, the close's code is kept", () => {
	const { client, clock } = setup();
	sockets[0].onerror({});
	assert.equal(client.connectionState().status, "connecting");
	clock.advance(0);
	assert.equal(client.connectionState().lastCloseReason, "socket error");
	clock.advance(50);
	sockets[1].onerror({});
	sockets[1].onclose({ code: 1006, reason: "refused" });
	clock.advance(0);
	assert.equal(client.connectionState().lastCloseReason, "close 1006 refused");
	assert.equal(client.connectionState().retries, 2);
	client.close();
});

test("reconnect() drops the connection and opens a new one at once", () => {
	const { client } = setup();
	sockets[0].accept();
	client.reconnect();
	assert.equal(sockets[0].closed, 1000);
	assert.equal(sockets.length, 2);
	sockets[1].accept();
	const st = client.connectionState();
	assert.equal(st.connectionCount, 1);
	assert.equal(st.lastCloseReason, "reconnect requested");
	assert.equal(sockets[1].sent[0].params.lastCloseReason, "reconnect requested");
	client.close();
});
