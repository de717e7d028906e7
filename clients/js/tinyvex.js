// Tinyvex client for browsers and Node 20+: live queries, mutations,
// actions, paginated queries and action providers over the tinyvex.v1
// WebSocket protocol (tinyvex(7)).
//
// The protocol lives in SyncEngine, which does no I/O: it is given frames
// and socket events, and sends through the callbacks it was given, so it
// can be tested by feeding it frames.  Inside it, as in Convex's client:
// the local query set (what the app subscribed to, shared by canonical
// args), the remote query set (what the server sent, version-checked,
// diffs applied) and the request manager (mutations by requestId, actions,
// one-shot queries, provider calls).  TinyvexClient adds the socket
// manager: the WebSocket, reconnects with backoff, and liveness.

export const PROTOCOL = "tinyvex.v1";
export const FEATURES = ["diff", "resume"];

/* Reconnect backoff: full jitter over min(cap, initial * 2^retries). */
export const BACKOFF_INITIAL_MS = 100;
export const BACKOFF_MAX_MS = 10000;
/* The server sends a frame at least every 15 s; three missed is dead. */
export const DEAD_AFTER_MS = 45000;
/* How long a mutation answered Unavailable or Overloaded is retried. */
export const MUTATION_DEADLINE_MS = 60000;
/* Query ids are integers 0..2^31-1 on the wire. */
const MAX_QUERY_ID = 2147483647;

export const ErrorCode = Object.freeze({
	ParseError: -32700,
	InvalidRequest: -32600,
	MethodNotFound: -32601,
	InvalidParams: -32602,
	InternalError: -32603,
	NotConnected: -32001,
	BaseVersionMismatch: -32002,
	ValidationError: -32003,
	NotFound: -32004,
	Conflict: -32005,
	TooLarge: -32006,
	Overloaded: -32007,
	Unavailable: -32008,
	Unauthorized: -32009,
	OutOfRetention: -32010,
	ActionFailed: -32011,
});

/* An error as a value: the server's code, kind, message and data. */
export class TinyvexError extends Error {
	constructor(code, kind, message, data) {
		super(message);
		this.name = "TinyvexError";
		this.code = code;
		this.kind = kind;
		this.data = data ?? { kind };
	}

	/* A JSON-RPC error object {code, message, data: {kind, ...}}. */
	static fromRpc(err) {
		if (err === null || typeof err !== "object")
			return new TinyvexError(ErrorCode.InternalError, "InternalError",
			    "malformed error object");
		const data = err.data !== null && typeof err.data === "object" ?
		    err.data : undefined;
		const kind = typeof data?.kind === "string" ? data.kind :
		    kindOfCode(err.code);
		return new TinyvexError(typeof err.code === "number" ? err.code :
		    ErrorCode.InternalError, kind, String(err.message ?? kind),
		    data ?? { kind });
	}

	/* The error of a QueryFailed modification {code, kind, message}. */
	static fromQueryFailed(err) {
		if (err === null || typeof err !== "object")
			return new TinyvexError(ErrorCode.InternalError, "InternalError",
			    "malformed QueryFailed");
		const kind = typeof err.kind === "string" ? err.kind :
		    kindOfCode(err.code);
		const data = err.data !== null && typeof err.data === "object" ?
		    { ...err.data, kind } : { kind };
		return new TinyvexError(typeof err.code === "number" ? err.code :
		    ErrorCode.InternalError, kind, String(err.message ?? kind), data);
	}

	/* What an action (or anything not resendable) gets when its
	 * connection is lost before the answer. */
	static connectionLost(what) {
		return new TinyvexError(ErrorCode.Unavailable, "Unavailable",
		    `connection lost; outcome of the ${what} unknown`,
		    { kind: "Unavailable", outcome: "unknown" });
	}

	static protocol(message) {
		return new TinyvexError(ErrorCode.InternalError, "ProtocolError",
		    message, { kind: "ProtocolError" });
	}
}

function kindOfCode(code) {
	for (const [k, v] of Object.entries(ErrorCode))
		if (v === code)
			return k;
	return "InternalError";
}

/* JSON with object keys sorted, at every depth: identical args give one
 * key, whatever order the app wrote them in. */
export function canonicalJson(v) {
	if (Array.isArray(v))
		return "[" + v.map((x) => canonicalJson(x === undefined ? null : x))
		    .join(",") + "]";
	if (v !== null && typeof v === "object") {
		const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
		return "{" + keys.map((k) => JSON.stringify(k) + ":" +
		    canonicalJson(v[k])).join(",") + "}";
	}
	return JSON.stringify(v) ?? "null";
}

function isObject(v) {
	return v !== null && typeof v === "object" && !Array.isArray(v);
}

function updateDoc(doc, op) {
	if (!isObject(doc))
		throw TinyvexError.protocol("diff update of a value that is no document");
	const out = { ...doc };
	if (op.set !== undefined) {
		if (!isObject(op.set))
			throw TinyvexError.protocol("diff update: set is not an object");
		Object.assign(out, op.set);
	}
	if (op.unset !== undefined) {
		if (!Array.isArray(op.unset))
			throw TinyvexError.protocol("diff update: unset is not a list");
		for (const f of op.unset)
			delete out[f];
	}
	if (op.append !== undefined) {
		if (!isObject(op.append))
			throw TinyvexError.protocol("diff update: append is not an object");
		for (const [f, suffix] of Object.entries(op.append)) {
			if (typeof out[f] !== "string" || typeof suffix !== "string")
				throw TinyvexError.protocol(`diff append to field ${f}, ` +
				    "which is not a string");
			out[f] = out[f] + suffix;
		}
	}
	return out;
}

/* Applies a QueryDiff's ops (and fields) to the value held, returning a
 * new value; the old one is not changed (subscribers may hold it).  The
 * value is an array of documents (db/query), a db/paginate result (ops
 * apply to its page, fields replace its other members) or one document
 * (db/get: one update without id).  Throws a TinyvexError of kind
 * ProtocolError when an op does not apply. */
export function applyDiff(value, ops, fields) {
	if (!Array.isArray(ops))
		throw TinyvexError.protocol("diff without an ops list");
	if (fields !== undefined && !isObject(fields))
		throw TinyvexError.protocol("diff fields is not an object");
	if (ops.length === 0 && fields === undefined)
		return value;
	if (ops.length === 1 && isObject(ops[0]) && ops[0].op === "update" &&
	    ops[0].id === undefined && !Array.isArray(value) &&
	    !(isObject(value) && Array.isArray(value.page) && fields !== undefined)) {
		return updateDoc(value, ops[0]);
	}
	let paged = false;
	let docs;
	if (Array.isArray(value))
		docs = value.slice();
	else if (isObject(value) && Array.isArray(value.page)) {
		docs = value.page.slice();
		paged = true;
	} else
		throw TinyvexError.protocol("diff of a value that holds no documents");
	for (const op of ops) {
		if (!isObject(op))
			throw TinyvexError.protocol("diff op is not an object");
		if (op.op === "insert") {
			if (!Number.isInteger(op.at) || op.at < 0 || op.at > docs.length ||
			    !isObject(op.doc))
				throw TinyvexError.protocol(`diff insert at ${op.at} of ` +
				    `${docs.length} documents`);
			docs.splice(op.at, 0, op.doc);
			continue;
		}
		const i = docs.findIndex((d) => isObject(d) && d._id === op.id);
		if (i < 0)
			throw TinyvexError.protocol(`diff ${op.op} of document ${op.id}, ` +
			    "which is not held");
		if (op.op === "remove")
			docs.splice(i, 1);
		else if (op.op === "update")
			docs[i] = updateDoc(docs[i], op);
		else
			throw TinyvexError.protocol(`unknown diff op ${op.op}`);
	}
	if (!paged) {
		if (fields !== undefined)
			throw TinyvexError.protocol("diff fields for a plain list");
		return docs;
	}
	return { ...value, ...(fields ?? {}), page: docs };
}

function sameVersion(a, b) {
	return isObject(a) && a.querySet === b.querySet &&
	    a.identity === b.identity && a.ts === b.ts;
}

function validVersion(v) {
	return isObject(v) && Number.isInteger(v.querySet) &&
	    Number.isInteger(v.identity) && Number.isInteger(v.ts);
}

function fmtVersion(v) {
	return isObject(v) ? `{${v.querySet}, ${v.identity}, ${v.ts}}` :
	    String(v);
}

/* Full jitter over an exponential, capped. */
export function backoffDelay(retries, random = Math.random) {
	const ceiling = Math.min(BACKOFF_MAX_MS,
	    BACKOFF_INITIAL_MS * 2 ** Math.min(retries, 20));
	return Math.floor(random() * ceiling);
}

const defaultClock = {
	now: () => Date.now(),
	setTimeout: (f, ms) => setTimeout(f, ms),
	clearTimeout: (t) => clearTimeout(t),
	random: () => Math.random(),
};

const silentLogger = {
	debug() {}, info() {}, warn() {}, error() {},
};

function makeLogger(logger) {
	if (logger === false || logger === undefined || logger === null)
		return silentLogger;
	if (logger === true)
		return console;
	return {
		debug: (...a) => logger.debug?.(...a),
		info: (...a) => logger.info?.(...a),
		warn: (...a) => logger.warn?.(...a),
		error: (...a) => logger.error?.(...a),
	};
}

export function randomSessionId() {
	const c = globalThis.crypto;
	if (c?.randomUUID)
		return c.randomUUID();
	let s = "";
	for (let i = 0; i < 4; i++)
		s += Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0");
	return s;
}

/*
 * The protocol state machine.  It does no I/O: the socket manager (or a
 * test) calls onConnecting(), onOpen(), onFrame(text) and onClose(reason);
 * it sends with io.send(text) and asks for the connection to be dropped
 * and resumed with io.reset(reason) when the server's sequence breaks.
 */
export class SyncEngine {
	constructor(opts = {}) {
		this.sessionId = opts.sessionId ?? randomSessionId();
		this.token = opts.token;
		this.providerToken = opts.providerToken;
		this.io = opts.io;
		this.clock = opts.clock ?? defaultClock;
		this.log = makeLogger(opts.logger);
		this.mutationDeadlineMs = opts.mutationDeadlineMs ??
		    MUTATION_DEADLINE_MS;
		this.onState = opts.onState ?? (() => {});

		/* Connection. */
		this.status = "disconnected";
		this.phase = "down";		/* down, hello, ready, closed */
		this.opened = 0;		/* connections opened so far */
		this.connectionCount = 0;	/* opened before the current one */
		this.retries = 0;
		this.nextRetryAt = null;
		this.lastCloseReason = null;
		this.maxObservedTs = 0;
		this.features = [];
		this.limits = null;
		this.gatewayId = null;
		this.nextRpcId = 1;
		this.rpc = new Map();		/* id -> pending request */

		/* Local query set. */
		this.queries = new Map();	/* key -> query */
		this.byId = new Map();		/* queryId -> query */
		this.nextQueryId = 1;
		this.removes = [];		/* queryIds to Remove */
		this.flushQueued = false;

		/* Remote query set. */
		this.version = { querySet: 0, identity: 0, ts: 0 };
		this.sentQuerySet = 0;
		this.chunk = null;
		this.resyncRef = null;

		/* Requests. */
		this.mutations = new Map();	/* requestId -> mutation */
		this.nextRequestId = 1;
		this.actions = new Set();
		this.oneShots = new Set();
		this.provided = new Map();	/* name or pattern -> handler */
		this.calls = new Map();		/* callId -> AbortController */

		this.counters = {
			transitions: 0, chunks: 0, queryUpdated: 0, queryDiff: 0,
			queryUnchanged: 0, queryFailed: 0, protocolErrors: 0,
			mutationsSent: 0, actionsSent: 0, callsServed: 0,
		};
	}

	/* --- state ------------------------------------------------------- */

	state() {
		return {
			status: this.status,
			retries: this.retries,
			connectionCount: this.connectionCount,
			inflightMutations: this.mutations.size,
			inflightActions: this.actions.size,
			lastCloseReason: this.lastCloseReason,
			nextRetryAt: this.nextRetryAt,
		};
	}

	stats() {
		return { ...this.counters, features: this.features.slice(),
		    queries: this.queries.size, maxObservedTs: this.maxObservedTs,
		    gatewayId: this.gatewayId };
	}

	setStatus(status) {
		this.status = status;
		this.emitState();
	}

	emitState() {
		const state = this.state();
		const text = JSON.stringify(state);
		if (text === this.lastState)
			return;
		this.lastState = text;
		try {
			this.onState(state);
		} catch (e) {
			this.log.error("tinyvex: connection state listener threw", e);
		}
	}

	/* --- socket events ----------------------------------------------- */

	onConnecting() {
		if (this.phase === "closed")
			return;
		this.nextRetryAt = null;
		this.setStatus("connecting");
	}

	onOpen() {
		if (this.phase === "closed")
			return;
		this.phase = "hello";
		this.connectionCount = this.opened++;
		this.version = { querySet: 0, identity: 0, ts: 0 };
		this.sentQuerySet = 0;
		this.chunk = null;
		this.resyncRef = null;
		this.removes = [];
		for (const q of this.queries.values()) {
			q.sent = false;
			q.held = false;
		}
		const p = { sessionId: this.sessionId,
		    connectionCount: this.connectionCount, features: FEATURES };
		if (this.lastCloseReason !== null)
			p.lastCloseReason = this.lastCloseReason;
		if (this.maxObservedTs > 0)
			p.maxObservedTs = this.maxObservedTs;
		if (this.token !== undefined)
			p.token = this.token;
		this.request("tinyvex/connect", p, { type: "connect" });
		this.emitState();
	}

	/* The socket is gone (closed, dead, or reset by us).  Returns the
	 * delay before the next attempt. */
	onClose(reason) {
		if (this.phase === "closed")
			return null;
		this.phase = "down";
		this.lastCloseReason = reason;
		this.chunk = null;
		this.resyncRef = null;
		const pending = [...this.rpc.values()];
		this.rpc.clear();
		for (const r of pending) {
			if (r.type === "mutation")
				r.m.rpcId = null;
			else if (r.type === "query")
				r.o.sent = false;
			else if (r.type === "action") {
				this.actions.delete(r.a);
				r.a.reject(TinyvexError.connectionLost("action"));
			}
		}
		for (const a of [...this.actions]) {
			if (a.sent) {
				this.actions.delete(a);
				a.reject(TinyvexError.connectionLost("action"));
			}
		}
		for (const c of this.calls.values())
			c.abort(TinyvexError.connectionLost("call"));
		this.calls.clear();
		for (const q of this.queries.values()) {
			q.sent = false;
			q.held = false;
		}
		const delay = backoffDelay(this.retries, this.clock.random);
		this.retries++;
		this.nextRetryAt = this.clock.now() + delay;
		this.setStatus("disconnected");
		return delay;
	}

	close() {
		if (this.phase === "closed")
			return;
		this.phase = "closed";
		this.rpc.clear();
		for (const m of this.mutations.values()) {
			if (m.timer !== null)
				this.clock.clearTimeout(m.timer);
			m.reject(TinyvexError.connectionLost("mutation"));
		}
		this.mutations.clear();
		for (const a of this.actions)
			a.reject(TinyvexError.connectionLost("action"));
		this.actions.clear();
		for (const o of this.oneShots)
			o.reject(TinyvexError.connectionLost("query"));
		this.oneShots.clear();
		for (const c of this.calls.values())
			c.abort(TinyvexError.connectionLost("call"));
		this.calls.clear();
		this.nextRetryAt = null;
		this.setStatus("closed");
	}

	/* The server broke the sequence: drop the connection and resume. */
	broken(reason) {
		this.counters.protocolErrors++;
		this.log.warn(`tinyvex: ${reason}; reconnecting`);
		this.io.reset(`protocol: ${reason}`);
		return false;
	}

	send(obj) {
		this.io.send(JSON.stringify(obj));
	}

	request(method, params, entry) {
		const id = this.nextRpcId++;
		this.rpc.set(id, entry);
		this.send({ jsonrpc: "2.0", id, method, params });
		return id;
	}

	/* --- frames ------------------------------------------------------ */

	onFrame(text) {
		if (this.phase !== "hello" && this.phase !== "ready")
			return;
		let msg;
		try {
			msg = JSON.parse(text);
		} catch {
			this.broken("a frame that is not JSON");
			return;
		}
		const msgs = Array.isArray(msg) ? msg : [msg];
		const conn = this.opened;
		for (const m of msgs) {
			if (this.opened !== conn || (this.phase !== "hello" &&
			    this.phase !== "ready"))
				return;
			if (!isObject(m)) {
				this.broken("a message that is not an object");
				return;
			}
			if (typeof m.method === "string") {
				if (m.id !== undefined && m.id !== null)
					this.serverRequest(m);
				else
					this.notification(m.method, m.params);
			} else if ("result" in m || "error" in m)
				this.response(m);
			else {
				this.broken("a message that is neither request nor answer");
				return;
			}
		}
	}

	notification(method, p) {
		switch (method) {
		case "tinyvex/transition":
			if (this.chunk !== null)
				return this.broken("a transition inside a chunked one");
			return this.transition(p);
		case "tinyvex/transitionChunk":
			return this.transitionChunk(p);
		case "tinyvex/ping":
			return;
		case "tinyvex/cancelAction": {
			const c = isObject(p) ? this.calls.get(p.id) : undefined;
			if (c !== undefined)
				c.abort(new TinyvexError(ErrorCode.Unavailable, "Cancelled",
				    "the caller went away or the call timed out",
				    { kind: "Cancelled" }));
			return;
		}
		default:
			this.log.debug(`tinyvex: notification ${method} ignored`);
		}
	}

	transitionChunk(p) {
		if (!isObject(p) || typeof p.transitionId !== "string" ||
		    !Number.isInteger(p.partNumber) ||
		    !Number.isInteger(p.totalParts) || p.totalParts < 1 ||
		    typeof p.chunk !== "string")
			return this.broken("a malformed transitionChunk");
		this.counters.chunks++;
		if (this.chunk === null) {
			if (p.partNumber !== 0)
				return this.broken(`chunk ${p.partNumber} of transition ` +
				    `${p.transitionId} without its start`);
			this.chunk = { id: p.transitionId, total: p.totalParts,
			    parts: [] };
		} else if (p.transitionId !== this.chunk.id)
			return this.broken(`chunk of transition ${p.transitionId} ` +
			    `inside transition ${this.chunk.id}`);
		if (p.partNumber !== this.chunk.parts.length ||
		    p.totalParts !== this.chunk.total)
			return this.broken(`chunk ${p.partNumber}/${p.totalParts} ` +
			    `where ${this.chunk.parts.length}/${this.chunk.total} ` +
			    "was due");
		this.chunk.parts.push(p.chunk);
		if (this.chunk.parts.length < this.chunk.total)
			return;
		const text = this.chunk.parts.join("");
		this.chunk = null;
		let t;
		try {
			t = JSON.parse(text);
		} catch {
			return this.broken("a chunked transition that is not JSON");
		}
		return this.transition(t);
	}

	transition(t) {
		if (!isObject(t) || !validVersion(t.endVersion) ||
		    !Array.isArray(t.modifications))
			return this.broken("a malformed transition");
		if (!sameVersion(t.startVersion, this.version))
			return this.broken("transition starts at " +
			    `${fmtVersion(t.startVersion)}, not at ` +
			    fmtVersion(this.version));
		this.counters.transitions++;
		const ts = t.endVersion.ts;
		this.version = { querySet: t.endVersion.querySet,
		    identity: t.endVersion.identity, ts };
		if (ts > this.maxObservedTs)
			this.maxObservedTs = ts;
		const touched = new Set();
		/* On a broken modification, what was applied before it is
		 * still shown: a resume names its hash, and a QueryUnchanged
		 * then would leave the app on the older value. */
		const broken = (reason) => {
			for (const q of touched)
				this.deliver(q);
			return this.broken(reason);
		};
		for (const m of t.modifications) {
			if (!isObject(m) || !Number.isInteger(m.queryId))
				return broken("a malformed modification");
			const q = this.byId.get(m.queryId);
			if (q === undefined)
				continue;	/* removed here, not yet there */
			switch (m.type) {
			case "QueryUpdated": {
				this.counters.queryUpdated++;
				/* The first result after a reconnect, equal to
				 * the value shown: nothing to tell the app. */
				const same = q.hasValue && !q.held &&
				    q.error === null && (typeof m.hash === "string" &&
				    q.hash !== null ? m.hash === q.hash :
				    JSON.stringify(m.value) === JSON.stringify(q.value));
				q.value = m.value;
				q.hasValue = true;
				q.held = true;
				q.hash = typeof m.hash === "string" ? m.hash : null;
				q.error = null;
				q.ts = ts;
				this.pin(q);
				if (!same)
					touched.add(q);
				break;
			}
			case "QueryDiff":
				this.counters.queryDiff++;
				if (!q.held)
					return broken(`QueryDiff for query ${q.queryId}, ` +
					    "which holds no value on this connection");
				try {
					q.value = applyDiff(q.value, m.ops, m.fields);
				} catch (e) {
					q.held = false;
					q.hash = null;
					return broken(`QueryDiff for query ${q.queryId}: ` +
					    e.message);
				}
				q.hash = typeof m.hash === "string" ? m.hash : null;
				q.error = null;
				q.ts = ts;
				touched.add(q);
				break;
			case "QueryUnchanged":
				this.counters.queryUnchanged++;
				if (!q.hasValue || q.hash === null || m.hash !== q.hash)
					return broken(`QueryUnchanged for query ` +
					    `${q.queryId} with hash ${m.hash}, holding ` +
					    `${q.hash}`);
				q.held = true;
				q.ts = ts;
				if (q.error !== null) {
					q.error = null;
					touched.add(q);
				}
				break;
			case "QueryFailed":
				this.counters.queryFailed++;
				q.error = TinyvexError.fromQueryFailed(m.error);
				q.held = false;
				q.hash = null;
				q.ts = ts;
				touched.add(q);
				break;
			case "QueryRemoved":
				q.held = false;
				break;
			default:
				this.log.debug(`tinyvex: modification ${m.type} ignored`);
			}
		}
		for (const q of touched)
			this.deliver(q);
	}

	/* A live page keeps the end its first result reached; a re-add
	 * passes it as endCursor. */
	pin(q) {
		if (q.udfPath !== "db/paginate" || q.pinEnd !== null ||
		    q.args.endCursor !== undefined || !isObject(q.value) ||
		    typeof q.value.continueCursor !== "string")
			return;
		q.pinEnd = q.value.continueCursor;
	}

	deliver(q) {
		for (const s of [...q.subs])
			this.deliverTo(q, s);
	}

	deliverTo(q, s) {
		if (!s.active)
			return;
		s.got = true;
		try {
			if (q.error !== null)
				s.onError?.(q.error);
			else
				s.onUpdate(q.value, { ts: q.ts });
		} catch (e) {
			this.log.error("tinyvex: subscriber threw", e);
		}
	}

	response(m) {
		const r = this.rpc.get(m.id);
		if (r === undefined) {
			if (m.error !== undefined)
				this.log.warn("tinyvex: server error " +
				    JSON.stringify(m.error));
			return;
		}
		this.rpc.delete(m.id);
		const err = m.error !== undefined ? TinyvexError.fromRpc(m.error) :
		    null;
		const res = m.result;
		switch (r.type) {
		case "connect":
			return this.connected(err, res);
		case "modify":
			return this.modified(r, err);
		case "mutation":
			return this.mutationAnswer(r.m, err, res);
		case "action":
			this.actions.delete(r.a);
			this.emitState();
			if (err !== null)
				return r.a.reject(err);
			this.observeTs(res?.ts);
			return r.a.resolve(res?.value ?? null);
		case "query":
			this.oneShots.delete(r.o);
			if (err !== null)
				return r.o.reject(err);
			this.observeTs(res?.ts);
			return r.o.resolve({ value: res?.value ?? null, ts: res?.ts });
		case "provide":
			if (err === null)
				return;
			this.log.error(`tinyvex: provide ${r.names.join(" ")}: ` +
			    err.message);
			/* The writer link down or the gateway busy: the functions
			 * would go unserved until the next reconnect. */
			if (r.attempt !== undefined && (err.kind === "Unavailable" ||
			    err.kind === "Overloaded"))
				this.provideLater(r.names, r.attempt);
			return;
		default:
			return;
		}
	}

	observeTs(ts) {
		if (Number.isInteger(ts) && ts > this.maxObservedTs)
			this.maxObservedTs = ts;
	}

	connected(err, res) {
		if (err !== null || !isObject(res))
			return this.broken("connect refused: " +
			    (err ? `${err.kind}: ${err.message}` : "no result"));
		this.phase = "ready";
		this.features = Array.isArray(res.features) ? res.features : [];
		this.limits = res.limits ?? null;
		this.gatewayId = res.gatewayId ?? null;
		this.setStatus("connected");
		this.resync();
	}

	/* After connect: every live query in one modifyQuerySet from 0,
	 * then unanswered mutations with their requestIds, one-shot queries,
	 * queued actions and provider registrations. */
	resync() {
		const adds = [...this.queries.values()].filter((q) => !q.refused);
		const mods = adds.map((q) => this.addOf(q));
		this.removes = [];
		if (mods.length > 0) {
			this.resyncRef = { type: "modify", adds };
			this.request("tinyvex/modifyQuerySet", { baseVersion: 0,
			    newVersion: 1, modifications: mods }, this.resyncRef);
			this.sentQuerySet = 1;
		} else
			this.synced();
		for (const m of this.mutations.values()) {
			if (m.timer !== null) {
				this.clock.clearTimeout(m.timer);
				m.timer = null;
			}
			this.sendMutation(m);
		}
		for (const o of this.oneShots)
			if (!o.sent)
				this.sendQuery(o);
		for (const a of this.actions)
			if (!a.sent)
				this.sendAction(a);
		if (this.provided.size > 0)
			this.sendProvide([...this.provided.keys()]);
	}

	synced() {
		this.resyncRef = null;
		if (this.retries !== 0) {
			this.retries = 0;
			this.emitState();
		}
	}

	addOf(q) {
		q.sent = true;
		const args = q.pinEnd !== null ? { ...q.args, endCursor: q.pinEnd } :
		    q.args;
		const add = { type: "Add", queryId: q.queryId, udfPath: q.udfPath,
		    args };
		if (q.hasValue && q.hash !== null && q.error === null)
			add.knownHash = q.hash;
		return add;
	}

	modified(r, err) {
		if (err === null) {
			if (r === this.resyncRef)
				this.synced();
			return;
		}
		/* A refused modifyQuerySet leaves the versions out of step:
		 * tell the subscribers it meant to add, and start over.  Unless
		 * the versions were the reason, the queries it added are not
		 * added again: refused again, they would drop every connection
		 * after this one. */
		const outOfStep = err.kind === "BaseVersionMismatch" ||
		    err.kind === "InvalidParams";
		for (const q of r.adds ?? []) {
			if (!this.byId.has(q.queryId))
				continue;
			q.error = err;
			if (!outOfStep) {
				q.refused = true;
				q.sent = false;
			}
			this.deliver(q);
		}
		this.broken(`modifyQuerySet refused: ${err.kind}: ${err.message}`);
	}

	/* --- local query set --------------------------------------------- */

	subscribe(udfPath, args, onUpdate, onError) {
		if (typeof udfPath !== "string")
			throw new TypeError("udfPath must be a string");
		if (typeof onUpdate !== "function")
			throw new TypeError("onUpdate must be a function");
		args = args ?? {};
		const key = udfPath + ":" + canonicalJson(args);
		let q = this.queries.get(key);
		if (q === undefined) {
			if (this.nextQueryId > MAX_QUERY_ID)
				this.nextQueryId = 1;
			q = { key, queryId: this.nextQueryId++, udfPath,
			    args: JSON.parse(canonicalJson(args)), subs: new Set(),
			    value: undefined, hasValue: false, hash: null, error: null,
			    ts: 0, held: false, sent: false, pinEnd: null,
			    refused: false };
			this.queries.set(key, q);
			this.byId.set(q.queryId, q);
			this.scheduleFlush();
		}
		const s = { onUpdate, onError, active: true, got: false };
		q.subs.add(s);
		if (q.hasValue || q.error !== null)
			queueMicrotask(() => {
				if (!s.got)
					this.deliverTo(q, s);
			});
		return () => {
			if (!s.active)
				return;
			s.active = false;
			q.subs.delete(s);
			if (q.subs.size > 0 || this.queries.get(key) !== q)
				return;
			this.queries.delete(key);
			this.byId.delete(q.queryId);
			if (q.sent)
				this.removes.push(q.queryId);
			this.scheduleFlush();
		};
	}

	scheduleFlush() {
		if (this.flushQueued)
			return;
		this.flushQueued = true;
		queueMicrotask(() => {
			this.flushQueued = false;
			this.flush();
		});
	}

	/* Sends what the local set changed since the last modifyQuerySet;
	 * while not connected nothing is sent: resync() adds the whole set. */
	flush() {
		if (this.phase !== "ready")
			return;
		const mods = [];
		const adds = [];
		for (const id of this.removes)
			mods.push({ type: "Remove", queryId: id });
		this.removes = [];
		for (const q of this.queries.values()) {
			if (!q.sent && !q.refused) {
				mods.push(this.addOf(q));
				adds.push(q);
			}
		}
		if (mods.length === 0)
			return;
		const base = this.sentQuerySet++;
		this.request("tinyvex/modifyQuerySet", { baseVersion: base,
		    newVersion: base + 1, modifications: mods },
		    { type: "modify", adds });
	}

	/* --- requests ---------------------------------------------------- */

	mutation(udfPath, args) {
		return new Promise((resolve, reject) => {
			if (this.phase === "closed")
				return reject(TinyvexError.connectionLost("mutation"));
			const m = { requestId: this.nextRequestId++, udfPath,
			    args: args ?? {}, resolve, reject, rpcId: null,
			    started: this.clock.now(), attempt: 0, timer: null };
			this.mutations.set(m.requestId, m);
			if (this.phase === "ready")
				this.sendMutation(m);
			this.emitState();
		});
	}

	sendMutation(m) {
		this.counters.mutationsSent++;
		m.rpcId = this.request("tinyvex/mutation", { udfPath: m.udfPath,
		    args: m.args, requestId: m.requestId }, { type: "mutation", m });
	}

	mutationAnswer(m, err, res) {
		m.rpcId = null;
		if (!this.mutations.has(m.requestId))
			return;
		if (err === null) {
			this.mutations.delete(m.requestId);
			this.observeTs(res?.ts);
			this.emitState();
			return m.resolve({ value: res?.value ?? null, ts: res?.ts });
		}
		if ((err.kind === "Unavailable" || err.kind === "Overloaded") &&
		    this.clock.now() - m.started < this.mutationDeadlineMs) {
			const delay = backoffDelay(m.attempt++, this.clock.random);
			this.log.debug(`tinyvex: mutation ${m.requestId}: ${err.kind}, ` +
			    `again in ${delay} ms`);
			m.timer = this.clock.setTimeout(() => {
				m.timer = null;
				if (this.phase === "ready" && m.rpcId === null &&
				    this.mutations.has(m.requestId))
					this.sendMutation(m);
			}, delay);
			return;
		}
		this.mutations.delete(m.requestId);
		this.emitState();
		m.reject(err);
	}

	query(udfPath, args) {
		return new Promise((resolve, reject) => {
			if (this.phase === "closed")
				return reject(TinyvexError.connectionLost("query"));
			const o = { udfPath, args: args ?? {}, resolve, reject,
			    sent: false };
			this.oneShots.add(o);
			if (this.phase === "ready")
				this.sendQuery(o);
		});
	}

	sendQuery(o) {
		o.sent = true;
		this.request("tinyvex/query", { udfPath: o.udfPath, args: o.args },
		    { type: "query", o });
	}

	action(udfPath, args) {
		return new Promise((resolve, reject) => {
			if (this.phase === "closed")
				return reject(TinyvexError.connectionLost("action"));
			const a = { udfPath, args: args ?? {}, resolve, reject,
			    sent: false };
			this.actions.add(a);
			if (this.phase === "ready")
				this.sendAction(a);
			this.emitState();
		});
	}

	sendAction(a) {
		a.sent = true;
		this.counters.actionsSent++;
		this.request("tinyvex/action", { udfPath: a.udfPath, args: a.args },
		    { type: "action", a });
	}

	/* --- providers --------------------------------------------------- */

	provide(name, handler) {
		if (typeof name !== "string" || name.length === 0)
			throw new TypeError("provide needs a function name or pattern");
		if (typeof handler !== "function")
			throw new TypeError("provide needs a handler function");
		const entry = { handler };
		this.provided.set(name, entry);
		if (this.phase === "ready")
			this.sendProvide([name]);
		return () => {
			if (this.provided.get(name) !== entry)
				return;
			this.provided.delete(name);
			if (this.phase === "ready")
				this.request("tinyvex/unprovide", { functions: [name] },
				    { type: "provide", names: [name] });
		};
	}

	sendProvide(names, attempt = 0) {
		const p = { functions: names };
		if (this.providerToken !== undefined)
			p.token = this.providerToken;
		this.request("tinyvex/provide", p, { type: "provide", names,
		    attempt });
	}

	/* A registration answered Unavailable or Overloaded is sent again
	 * after a backoff, on the same connection (a new one registers
	 * everything anyway), for the names still provided. */
	provideLater(names, attempt) {
		const conn = this.opened;
		this.clock.setTimeout(() => {
			if (this.opened !== conn || this.phase !== "ready")
				return;
			const still = names.filter((n) => this.provided.has(n));
			if (still.length > 0)
				this.sendProvide(still, attempt + 1);
		}, backoffDelay(attempt, this.clock.random));
	}

	handlerFor(udfPath) {
		const exact = this.provided.get(udfPath);
		if (exact !== undefined)
			return exact.handler;
		let best = null;
		let bestLen = -1;
		for (const [name, e] of this.provided) {
			if (!name.endsWith("/*"))
				continue;
			const prefix = name.slice(0, -1);
			if (udfPath.startsWith(prefix) && prefix.length > bestLen) {
				best = e.handler;
				bestLen = prefix.length;
			}
		}
		return best;
	}

	serverRequest(m) {
		const reply = (body) => this.send({ jsonrpc: "2.0", id: m.id,
		    ...body });
		if (m.method !== "tinyvex/runAction")
			return reply({ error: { code: ErrorCode.MethodNotFound,
			    message: `unknown method ${m.method}` } });
		const p = m.params;
		if (!isObject(p) || typeof p.udfPath !== "string")
			return reply({ error: { code: ErrorCode.InvalidParams,
			    message: "runAction without a udfPath" } });
		const handler = this.handlerFor(p.udfPath);
		if (handler === null)
			return reply({ error: { code: ErrorCode.NotFound,
			    message: `${p.udfPath} is not provided here` } });
		const ac = new AbortController();
		const conn = this.opened;
		this.calls.set(m.id, ac);
		this.counters.callsServed++;
		const alive = () => this.opened === conn && this.phase === "ready" &&
		    this.calls.get(m.id) === ac;
		Promise.resolve().then(() => handler(p.args ?? {}, { callId: m.id,
		    signal: ac.signal, udfPath: p.udfPath, sessionId: p.sessionId }))
		    .then((value) => {
			if (!alive())
				return;
			this.calls.delete(m.id);
			reply({ result: value === undefined ? null : value });
		}, (e) => {
			if (!alive())
				return;
			this.calls.delete(m.id);
			const err = { code: Number.isInteger(e?.code) ? e.code : -32000,
			    message: String(e?.message ?? e) };
			if (e?.data !== undefined)
				err.data = e.data;
			reply({ error: err });
		});
	}
}

/*
 * A paginated subscription: one db/paginate query per page, each page
 * starting where the one before it ended (its pinned continueCursor).
 */
class Pager {
	constructor(client, args, initialNumItems, onUpdate, onError) {
		if (!Number.isInteger(initialNumItems) || initialNumItems < 1)
			throw new TypeError("initialNumItems must be a positive integer");
		this.client = client;
		this.args = { ...(args ?? {}) };
		delete this.args.cursor;
		delete this.args.endCursor;
		delete this.args.numItems;
		this.onUpdate = onUpdate;
		this.onError = onError;
		this.pages = [];
		this.active = true;
		this.results = [];
		this.status = "loading";
		this.addPage(null, initialNumItems);
	}

	addPage(cursor, numItems) {
		const page = { cursor, value: undefined, unsubscribe: null };
		this.pages.push(page);
		page.unsubscribe = this.client.subscribe("db/paginate",
		    { ...this.args, cursor, numItems }, (value) => {
			page.value = value;
			this.changed();
		}, (error) => {
			try {
				this.onError?.(error);
			} catch (e) {
				this.client.engine.log.error("tinyvex: onError threw", e);
			}
		});
	}

	changed() {
		if (!this.active)
			return;
		const results = [];
		let status = "canLoadMore";
		for (const p of this.pages) {
			if (p.value === undefined) {
				status = "loading";
				break;
			}
			results.push(...(p.value.page ?? []));
		}
		const last = this.pages[this.pages.length - 1];
		if (status !== "loading" && last.value.isDone)
			status = "exhausted";
		this.results = results;
		this.status = status;
		try {
			this.onUpdate({ results, status });
		} catch (e) {
			this.client.engine.log.error("tinyvex: pager callback threw", e);
		}
	}

	/* One more page of n; false when nothing can follow yet. */
	loadMore(n) {
		if (!Number.isInteger(n) || n < 1)
			throw new TypeError("loadMore needs a positive integer");
		const last = this.pages[this.pages.length - 1];
		if (!this.active || last.value === undefined || last.value.isDone ||
		    typeof last.value.continueCursor !== "string")
			return false;
		this.addPage(last.value.continueCursor, n);
		this.status = "loading";
		return true;
	}

	unsubscribe() {
		if (!this.active)
			return;
		this.active = false;
		for (const p of this.pages)
			p.unsubscribe();
	}
}

/*
 * The client: a SyncEngine behind a socket manager that opens the
 * WebSocket, reconnects with backoff, and declares a connection dead
 * after DEAD_AFTER_MS without a frame.
 */
export class TinyvexClient {
	constructor(url, options = {}) {
		this.url = url;
		this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
		if (typeof this.WebSocket !== "function")
			throw new TypeError("no WebSocket: pass options.WebSocket " +
			    "(Node 20 needs --experimental-websocket)");
		this.clock = options.clock ?? defaultClock;
		this.deadAfterMs = options.deadAfterMs ?? DEAD_AFTER_MS;
		this.listeners = new Set();
		this.ws = null;
		this.retryTimer = null;
		this.liveTimer = null;
		this.closed = false;
		this.engine = new SyncEngine({
			sessionId: options.sessionId,
			token: options.token,
			providerToken: options.providerToken,
			logger: options.logger,
			clock: this.clock,
			mutationDeadlineMs: options.mutationDeadlineMs,
			io: {
				send: (text) => this.ws?.send(text),
				reset: (reason) => this.lost(reason, true),
			},
			onState: (state) => {
				for (const f of [...this.listeners]) {
					try {
						f(state);
					} catch (e) {
						this.engine.log.error("tinyvex: listener threw", e);
					}
				}
			},
		});
		this.sessionId = this.engine.sessionId;
		this.wake = () => {
			if (this.ws === null && !this.closed)
				this.open();
		};
		this.onVisible = () => {
			if (globalThis.document?.visibilityState === "visible")
				this.wake();
		};
		if (typeof globalThis.window?.addEventListener === "function") {
			globalThis.window.addEventListener("online", this.wake);
			globalThis.document?.addEventListener?.("visibilitychange",
			    this.onVisible);
		}
		this.open();
	}

	open() {
		if (this.closed)
			return;
		if (this.retryTimer !== null) {
			this.clock.clearTimeout(this.retryTimer);
			this.retryTimer = null;
		}
		let ws;
		this.engine.onConnecting();
		try {
			ws = new this.WebSocket(this.url, PROTOCOL);
		} catch (e) {
			this.engine.log.warn("tinyvex: WebSocket: " + e.message);
			this.ws = { close() {}, send() {} };
			this.lost("socket: " + e.message, false);
			return;
		}
		this.ws = ws;
		this.touch();
		ws.onopen = () => {
			if (this.ws !== ws)
				return;
			this.touch();
			this.engine.onOpen();
		};
		ws.onmessage = (ev) => {
			if (this.ws !== ws)
				return;
			this.touch();
			if (typeof ev.data !== "string")
				this.engine.broken("a binary frame");
			else
				this.engine.onFrame(ev.data);
		};
		/* Browsers follow an error event with a close event (which
		 * has the code); Node 20's WebSocket reports a refused
		 * connection with the error alone. */
		ws.onerror = () => {
			this.clock.setTimeout(() => {
				if (this.ws === ws)
					this.lost("socket error", true);
			}, 0);
		};
		ws.onclose = (ev) => {
			if (this.ws !== ws)
				return;
			this.lost(`close ${ev.code}` + (ev.reason ? ` ${ev.reason}` : ""),
			    false);
		};
	}

	touch() {
		if (this.liveTimer !== null)
			this.clock.clearTimeout(this.liveTimer);
		this.liveTimer = this.clock.setTimeout(() => {
			this.liveTimer = null;
			this.lost(`no frame for ${this.deadAfterMs} ms`, true);
		}, this.deadAfterMs);
	}

	/* The connection is over; reconnect after the engine's backoff. */
	lost(reason, closeSocket) {
		const ws = this.ws;
		if (ws === null)
			return;
		this.ws = null;
		if (this.liveTimer !== null) {
			this.clock.clearTimeout(this.liveTimer);
			this.liveTimer = null;
		}
		ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
		if (closeSocket) {
			try {
				ws.close(1000);
			} catch {
				/* already closing */
			}
		}
		const delay = this.engine.onClose(reason);
		if (this.closed || delay === null)
			return;
		this.retryTimer = this.clock.setTimeout(() => {
			this.retryTimer = null;
			this.open();
		}, delay);
	}

	subscribe(udfPath, args, onUpdate, onError) {
		return this.engine.subscribe(udfPath, args, onUpdate, onError);
	}

	mutation(udfPath, args) {
		return this.engine.mutation(udfPath, args);
	}

	query(udfPath, args) {
		return this.engine.query(udfPath, args);
	}

	action(udfPath, args) {
		return this.engine.action(udfPath, args);
	}

	paginate(args, { initialNumItems }, onUpdate, onError) {
		return new Pager(this, args, initialNumItems, onUpdate, onError);
	}

	provide(nameOrPattern, handler) {
		return this.engine.provide(nameOrPattern, handler);
	}

	onConnectionState(listener) {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	connectionState() {
		return this.engine.state();
	}

	/* Counters of what the connection received, and the features the
	 * gateway accepted. */
	stats() {
		return this.engine.stats();
	}

	/* Drop the connection (if any) and connect again at once. */
	reconnect() {
		if (this.closed)
			return;
		if (this.ws !== null)
			this.lost("reconnect requested", true);
		this.open();
	}

	close() {
		if (this.closed)
			return;
		this.closed = true;
		if (this.retryTimer !== null) {
			this.clock.clearTimeout(this.retryTimer);
			this.retryTimer = null;
		}
		if (typeof globalThis.window?.removeEventListener === "function") {
			globalThis.window.removeEventListener("online", this.wake);
			globalThis.document?.removeEventListener?.("visibilitychange",
			    this.onVisible);
		}
		const ws = this.ws;
		if (ws !== null) {
			this.ws = null;
			if (this.liveTimer !== null) {
				this.clock.clearTimeout(this.liveTimer);
				this.liveTimer = null;
			}
			ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
			try {
				ws.close(1000);
			} catch {
				/* already closing */
			}
		}
		this.engine.close();
	}
}
