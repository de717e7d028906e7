// The client's protocol state machine, free of I/O: it is told that a
// connection opened or was lost, is fed every text frame received, and is
// asked for subscriptions, mutations, actions and providers; it answers
// with frames to send (`outbox`) and events for the app (`events`).  Time
// comes in as an argument.  So it can be driven by recorded frames in a
// test exactly as the socket manager drives it.
//
// What it keeps, each in a file of its own: the local query set (what
// the app wants), the remote query set (what the server sent,
// version-checked, diffs and QueryUnchanged applied), the chunk
// reassembly of the current transition, and the request manager
// (mutations by requestId, resent and retried; actions, never resent;
// one-shot queries and provide calls).  Here: the connection's phases,
// the resume after a connect (re-adds with knownHash, provider renewal,
// resends), dispatch of frames in, and provider calls.

/// What the protocol tells the client to do for the app.
enum ProtocolEvent: Sendable {
	/// A subscribed query has a new result.
	case queryChanged(QueryChange)
	/// The request `key` got its answer (the JSON-RPC `result`).
	case answered(key: Int, Result<JSONValue, TinyvexError>)
	/// Mutation `key` was answered Unavailable or Overloaded: call
	/// `retry(key:now:)` after about `after` seconds.
	case retry(key: Int, after: Double)
	/// A provider call to run.
	case runAction(ActionCallInfo)
	/// The server withdrew a provider call (`callKey` of its info).
	case cancelAction(callKey: String)
	/// The connect answer arrived.
	case connected(gatewayId: String, features: [String])
	/// Every re-added query has been answered: the connection is whole.
	case resumed
	/// The server refused a query of the set: it is dropped.
	case queryRejected(queryId: Int, TinyvexError)
	/// The server broke the protocol: close this connection and resume
	/// on a new one.
	case fatal(TinyvexError)
}

/// A `tinyvex/runAction` request from the server.
struct ActionCallInfo: Sendable {
	let callId: JSONValue
	let epoch: Int
	let udfPath: String
	let args: JSONValue
	let sessionId: String?

	var callKey: String { callId.jsonText }
}

struct ProtocolConfig: Sendable {
	var sessionId: String
	var token: String?
	var features: [String] = ["diff", "resume"]
	/// How long the library retries a mutation answered Unavailable or
	/// Overloaded before the app sees the error (seconds).
	var mutationDeadline: Double = 60
}

struct SyncProtocol: Sendable {
	enum Phase: Sendable, Equatable {
		case disconnected
		case awaitingConnect(rpcId: Int)
		case ready
		case closed
	}

	let config: ProtocolConfig
	private(set) var phase = Phase.disconnected
	private(set) var local = LocalQuerySet()
	private(set) var remote = RemoteQuerySet()
	private var chunks = ChunkAssembler()
	private var requests = RequestManager()
	/// Functions this client provides, renewed on every connection.
	private(set) var provided: [String] = []
	/// Provider calls running on the current connection.
	private var running: Set<String> = []
	/// Connections opened so far.
	private(set) var epoch = 0
	private(set) var connectionCount = 0
	private var lastCloseReason: String?
	/// Highest ts seen from any server.
	private(set) var maxObservedTs: Int64 = 0
	private(set) var features: [String] = []
	/// Transitions that came in chunks, for tests and stats.
	private(set) var chunkedTransitions = 0

	/// Frames to send, in order.
	var outbox: [String] = []
	/// Events for the app, in order.
	var events: [ProtocolEvent] = []

	init(config: ProtocolConfig) {
		self.config = config
	}

	mutating func drain() -> (frames: [String], events: [ProtocolEvent]) {
		defer {
			outbox = []
			events = []
		}
		return (outbox, events)
	}

	var mutationsInFlight: Int { requests.mutationCount }
	var actionsInFlight: Int { requests.actionCount }

	// MARK: connection

	/// A socket is open: say `tinyvex/connect` first.
	mutating func connectionOpened() {
		guard phase != .closed else {
			return
		}
		epoch += 1
		var p: [String: JSONValue] = [
			"sessionId": .string(config.sessionId),
			"connectionCount": .number(Double(connectionCount)),
			"features": .array(config.features.map { .string($0) }),
		]
		if let r = lastCloseReason {
			p["lastCloseReason"] = .string(r)
		}
		if maxObservedTs > 0 {
			p["maxObservedTs"] = .number(Double(maxObservedTs))
		}
		if let t = config.token {
			p["token"] = .string(t)
		}
		let id = send("tinyvex/connect", .object(p), .connect)
		phase = .awaitingConnect(rpcId: id)
	}

	/// The socket is gone (`reason` is told to the next connect).  Sent
	/// actions fail with outcome unknown; mutations, one-shot queries
	/// and provide calls wait to be resent.
	mutating func connectionLost(reason: String) {
		guard phase != .disconnected, phase != .closed else {
			return
		}
		phase = .disconnected
		connectionCount += 1
		lastCloseReason = reason
		remote.reset()
		chunks.reset()
		local.version = 0
		for k in requests.connectionLost() {
			events.append(.answered(key: k, .failure(.connectionLost(outcomeUnknown: true))))
		}
		for c in running.sorted() {
			events.append(.cancelAction(callKey: c))
		}
		running = []
	}

	/// The client is closed: everything waiting fails with `.closed`.
	mutating func close() {
		phase = .closed
		for k in requests.closeAll() {
			events.append(.answered(key: k, .failure(.closed)))
		}
		for c in running.sorted() {
			events.append(.cancelAction(callKey: c))
		}
		running = []
	}

	// MARK: the app's requests

	/// A subscriber for (udfPath, args); the result held for the query,
	/// if any, is for the new subscriber to see first.
	mutating func subscribe(udfPath: String, args: JSONValue) -> (queryId: Int, cached: QueryResult?) {
		let (id, added) = local.subscribe(udfPath: udfPath, args: args)
		if added {
			if phase == .ready, let q = local.query(id) {
				modify([add(q)], added: [id], resume: false)
			}
			return (id, nil)
		}
		return (id, remote.result(id))
	}

	mutating func unsubscribe(queryId: Int) {
		guard local.unsubscribe(queryId: queryId) else {
			return
		}
		remote.forget(queryId)
		if phase == .ready {
			modify([["type": "Remove", "queryId": .number(Double(queryId))]], added: [], resume: false)
		}
	}

	mutating func mutation(key: Int, udfPath: String, args: JSONValue, now: Double) {
		guard phase != .closed else {
			events.append(.answered(key: key, .failure(.closed)))
			return
		}
		tick(now: now)
		requests.addMutation(key: key, udfPath: udfPath, args: args)
		if phase == .ready, let f = requests.sendMutation(key, now: lastNow) {
			outbox.append(f)
		}
	}

	/// A retry of mutation `key` is due (after a `.retry` event).
	mutating func retry(key: Int, now: Double) {
		tick(now: now)
		guard phase == .ready, let f = requests.retryMutation(key, now: lastNow) else {
			return
		}
		outbox.append(f)
	}

	mutating func action(key: Int, udfPath: String, args: JSONValue) {
		guard phase != .closed else {
			events.append(.answered(key: key, .failure(.closed)))
			return
		}
		requests.addAction(key: key, RequestManager.Call(method: "tinyvex/action",
		    params: ["udfPath": .string(udfPath), "args": args]))
		if phase == .ready, let f = requests.sendAction(key) {
			outbox.append(f)
		}
	}

	/// A one-shot `tinyvex/query`.
	mutating func query(key: Int, udfPath: String, args: JSONValue) {
		call(key: key, method: "tinyvex/query", params: ["udfPath": .string(udfPath), "args": args])
	}

	/// Registers provided functions (answered once the server has them;
	/// renewed on every later connection).
	mutating func provide(key: Int, functions: [String]) {
		call(key: key, method: "tinyvex/provide",
		    params: ["functions": .array(functions.map { .string($0) })])
	}

	/// Stops providing functions (calls already sent still finish).
	mutating func unprovide(key: Int, functions: [String]) {
		provided.removeAll { functions.contains($0) }
		call(key: key, method: "tinyvex/unprovide",
		    params: ["functions": .array(functions.map { .string($0) })])
	}

	/// A provider call finished: its answer goes out if its connection
	/// is still the current one (the server fails it otherwise).
	mutating func actionResult(_ info: ActionCallInfo, _ result: Result<JSONValue, ProviderError>) {
		guard info.epoch == epoch, phase == .ready, running.remove(info.callKey) != nil else {
			return
		}
		var msg: [String: JSONValue] = ["jsonrpc": "2.0", "id": info.callId]
		switch result {
		case .success(let v):
			msg["result"] = v
		case .failure(let e):
			var err: [String: JSONValue] = ["code": .number(Double(e.code)), "message": .string(e.message)]
			if let d = e.data {
				err["data"] = d
			}
			msg["error"] = .object(err)
		}
		outbox.append(JSONValue.object(msg).jsonText)
	}

	// MARK: frames in

	/// One text frame from the server.
	mutating func receive(_ text: String, now: Double = 0) {
		tick(now: now)
		guard phase != .disconnected, phase != .closed else {
			return
		}
		let msg: JSONValue
		do {
			msg = try JSONValue(parsing: text)
		} catch {
			events.append(.fatal(error))
			return
		}
		do {
			if case .array(let batch) = msg {
				for m in batch {
					try handle(m)
				}
			} else {
				try handle(msg)
			}
		} catch {
			events.append(.fatal(error))
		}
	}

	private mutating func handle(_ m: JSONValue) throws(TinyvexError) {
		guard case .object(let o) = m else {
			throw TinyvexError.invalidResponse("message is not an object")
		}
		if let method = o["method"]?.stringValue {
			try notification(method, o["params"] ?? .null, id: o["id"])
			return
		}
		guard let id = o["id"]?.intValue else {
			if let e = o["error"] {
				throw TinyvexError.fromWire(e)
			}
			throw TinyvexError.invalidResponse("answer without a known id")
		}
		guard let what = requests.answered(id) else {
			return
		}
		let result: Result<JSONValue, TinyvexError>
		if let e = o["error"] {
			result = .failure(TinyvexError.fromWire(e))
		} else if let r = o["result"] {
			result = .success(r)
			if let ts = r["ts"]?.int64Value {
				maxObservedTs = max(maxObservedTs, ts)
			}
		} else {
			throw TinyvexError.invalidResponse("answer without result or error")
		}
		try answered(what, id: id, result)
	}

	private mutating func notification(_ method: String, _ p: JSONValue, id: JSONValue?) throws(TinyvexError) {
		switch method {
		case "tinyvex/transition":
			guard !chunks.inProgress else {
				throw TinyvexError.invalidResponse("transition inside a chunked one")
			}
			try transition(p)
		case "tinyvex/transitionChunk":
			if let text = try chunks.add(p) {
				chunkedTransitions += 1
				try transition(try JSONValue(parsing: text))
			}
		case "tinyvex/ping":
			break
		case "tinyvex/runAction":
			guard let id, phase == .ready, let udf = p["udfPath"]?.stringValue else {
				throw TinyvexError.invalidResponse("bad runAction")
			}
			let info = ActionCallInfo(callId: id, epoch: epoch, udfPath: udf,
			    args: p["args"] ?? .null, sessionId: p["sessionId"]?.stringValue)
			running.insert(info.callKey)
			events.append(.runAction(info))
		case "tinyvex/cancelAction":
			if let c = p["id"], running.contains(c.jsonText) {
				events.append(.cancelAction(callKey: c.jsonText))
			}
		default:
			if let id {
				let err: JSONValue = ["code": -32601, "message": "method not found",
				    "data": ["kind": "MethodNotFound"]]
				outbox.append(JSONValue.object(["jsonrpc": "2.0", "id": id, "error": err]).jsonText)
			}
		}
	}

	private mutating func transition(_ t: JSONValue) throws(TinyvexError) {
		guard phase == .ready else {
			throw TinyvexError.invalidResponse("transition before the connect answer")
		}
		let localSet = local
		var changes: [QueryChange] = []
		var failure: TinyvexError?
		do {
			try remote.apply(t, udfPath: { localSet.query($0)?.udfPath }, into: &changes)
		} catch {
			failure = error
		}
		maxObservedTs = max(maxObservedTs, remote.version.ts)
		for c in changes {
			// A live page keeps the end its first result reached (the end
			// of the index when that result was done).
			if let q = local.query(c.queryId), q.udfPath == "db/paginate", q.args["endCursor"] == nil,
			    q.pinnedEnd == nil, case .value(let v, _) = c.result,
			    let end = v["continueCursor"]?.stringValue {
				local.pin(queryId: c.queryId, end: end)
			}
			events.append(.queryChanged(c))
		}
		if let failure {
			throw failure
		}
	}

	private mutating func answered(_ what: PendingRequest, id: Int,
	    _ result: Result<JSONValue, TinyvexError>) throws(TinyvexError) {
		switch what {
		case .connect:
			switch result {
			case .failure(let e):
				throw e
			case .success(let r):
				guard r["protocol"]?.intValue == 1 else {
					throw TinyvexError.invalidResponse("server speaks protocol \(r["protocol"]?.jsonText ?? "none")")
				}
				features = r["features"]?.arrayValue?.compactMap { $0.stringValue } ?? []
				phase = .ready
				events.append(.connected(gatewayId: r["gatewayId"]?.stringValue ?? "", features: features))
				resume()
			}
		case .modify(let added, let isResume):
			switch result {
			case .success:
				if isResume {
					events.append(.resumed)
				}
			case .failure(let e):
				for q in added {
					local.drop(queryId: q)
					remote.forget(q)
					events.append(.queryRejected(queryId: q, e))
				}
				// The server's query set is behind ours now: start over.
				throw TinyvexError.invalidResponse("modifyQuerySet refused: \(e)")
			}
		case .mutation(let key):
			switch result {
			case .failure(let e):
				if let delay = requests.mutationFailed(key, e, now: lastNow, deadline: config.mutationDeadline) {
					events.append(.retry(key: key, after: delay))
					return
				}
			case .success:
				guard requests.finishMutation(key) else {
					return
				}
			}
			events.append(.answered(key: key, result))
		case .action(let key):
			requests.finishAction(key)
			events.append(.answered(key: key, result))
		case .call(let key):
			if let c = requests.finishCall(key), c.method == "tinyvex/provide",
			    case .success = result {
				provided(c.params["functions"]?.arrayValue?.compactMap { $0.stringValue } ?? [])
			}
			events.append(.answered(key: key, result))
		case .provide(let functions):
			// A renewal after a reconnect.  Unavailable or Overloaded (the
			// writer link down): resume on a new connection, which asks
			// again.  Refused for good (the provider token changed): the
			// functions are no longer provided; asking again would drop
			// every connection after this one the same way.
			if case .failure(let e) = result {
				if e.code == -32008 || e.code == -32007 {
					throw TinyvexError.invalidResponse("provider registration refused: \(e) (\(functions))")
				}
				provided.removeAll { functions.contains($0) }
			}
		}
	}

	/// Time of the latest mutation send, for the retry deadline.
	private var lastNow: Double = 0

	/// After the connect answer: re-add every query from version 0 with
	/// the hash already held, renew providers, resend mutations, send the
	/// actions and calls that waited.
	private mutating func resume() {
		let qs = local.queries.values.sorted { $0.queryId < $1.queryId }
		if qs.isEmpty {
			events.append(.resumed)
		} else {
			// Refused, these are dropped like any refused Add: re-added
			// on the next connection, they would be refused again.
			modify(qs.map { add($0) }, added: qs.map(\.queryId), resume: true)
		}
		if !provided.isEmpty {
			send("tinyvex/provide", ["functions": .array(provided.map { .string($0) })], .provide(provided))
		}
		outbox += requests.resend(now: lastNow)
	}

	/// Advances the clock the retry deadline is measured on.
	mutating func tick(now: Double) {
		lastNow = max(lastNow, now)
	}

	// MARK: frames out

	@discardableResult
	private mutating func send(_ method: String, _ params: JSONValue, _ what: PendingRequest) -> Int {
		let (id, text) = requests.frame(method, params, what)
		outbox.append(text)
		return id
	}

	private func add(_ q: LocalQuery) -> JSONValue {
		var a: [String: JSONValue] = ["type": "Add", "queryId": .number(Double(q.queryId)),
		    "udfPath": .string(q.udfPath), "args": q.addArgs]
		if let h = remote.knownHash(q.queryId) {
			a["knownHash"] = .string(h)
		}
		return .object(a)
	}

	private mutating func modify(_ mods: [JSONValue], added: [Int], resume: Bool) {
		let base = local.version
		local.version += 1
		send("tinyvex/modifyQuerySet", ["baseVersion": .number(Double(base)),
		    "newVersion": .number(Double(local.version)), "modifications": .array(mods)],
		    .modify(added: added, resume: resume))
	}

	private mutating func call(key: Int, method: String, params: JSONValue) {
		guard phase != .closed else {
			events.append(.answered(key: key, .failure(.closed)))
			return
		}
		requests.addCall(key: key, RequestManager.Call(method: method, params: params))
		if phase == .ready, let f = requests.sendCall(key) {
			outbox.append(f)
		}
	}

	/// A provide call answered: its functions are renewed from now on.
	mutating func provided(_ functions: [String]) {
		for f in functions where !provided.contains(f) {
			provided.append(f)
		}
	}
}

/// An error a provider's handler answers a call with.
struct ProviderError: Error, Sendable {
	var code: Int
	var message: String
	var data: JSONValue?
}
