// The client's engine: the protocol state machine behind one lock, fed by
// the socket manager, and the app's side of it (subscribers' sinks,
// callers waiting for answers, provider handlers running as tasks).
// Every entry point takes the lock, steps the state machine and carries
// out what it produced before letting go, so frames leave in the order
// they were made and updates reach subscribers in the order they came.
// Nothing done under the lock blocks: frames are queued on the
// transport, updates are yielded into streams, answers resume
// continuations, handlers run in their own tasks.

import Foundation

/// Receives one query's results.
struct QuerySink: Sendable {
	let deliver: @Sendable (Result<JSONValue, TinyvexError>, Int64) -> Void
	let finish: @Sendable () -> Void
}

/// A registered provider function.
struct ProviderEntry: Sendable {
	let pattern: String
	let handler: @Sendable (ActionCall) async throws -> any Encodable & Sendable

	func matches(_ udfPath: String) -> Bool {
		if pattern.hasSuffix("/*") {
			return udfPath.hasPrefix(pattern.dropLast())
		}
		return pattern == udfPath
	}
}

final class ClientCore: @unchecked Sendable {
	private let lock = NSLock()
	// Everything below is guarded by `lock`.
	private var sm: SyncProtocol
	private var generation = 0
	private var nextKey = 1
	private var sinks: [Int: [Int: QuerySink]] = [:]
	private var waiters: [Int: @Sendable (Result<JSONValue, TinyvexError>) -> Void] = [:]
	private var providers: [ProviderEntry] = []
	private var running: [String: Task<Void, Never>] = [:]
	private var state = ConnectionState.connecting
	private var stateObservers: [Int: AsyncStream<ConnectionState>.Continuation] = [:]
	private var isClosed = false

	private var socket: SocketManager?
	private let clock = ContinuousClock()
	private let epoch: ContinuousClock.Instant

	init(url: URL, options: TinyvexOptions, transport: any WebSocketTransport) {
		var cfg = ProtocolConfig(sessionId: UUID().uuidString)
		cfg.token = options.token
		cfg.mutationDeadline = options.mutationDeadline
		cfg.features = options.features
		sm = SyncProtocol(config: cfg)
		epoch = clock.now
		var headers: [String: String] = [:]
		if let t = options.token {
			headers["Authorization"] = "Bearer \(t)"
		}
		let cb = SocketManager.Callbacks(
		    opened: { [weak self] g in self?.opened(g) },
		    text: { [weak self] s, g in self?.received(s, g) },
		    lost: { [weak self] r, g in self?.lost(r, g) },
		    state: { [weak self] s in self?.setState(s) })
		socket = SocketManager(transport: transport, url: url, headers: headers,
		    liveness: options.livenessTimeout, callbacks: cb)
		socket?.start()
	}

	var sessionId: String { sm.config.sessionId }

	private var now: Double {
		let d = clock.now - epoch
		return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
	}

	// MARK: socket manager side

	private func opened(_ g: Int) {
		lock.lock()
		defer { lock.unlock() }
		generation = g
		sm.connectionOpened()
		flush()
	}

	private func received(_ text: String, _ g: Int) {
		lock.lock()
		defer { lock.unlock() }
		guard g == generation else {
			return
		}
		sm.receive(text, now: now)
		flush()
	}

	private func lost(_ reason: String, _ g: Int) {
		lock.lock()
		defer { lock.unlock() }
		guard g == generation else {
			return
		}
		generation = -1
		sm.connectionLost(reason: reason)
		flush()
	}

	/// Under `lock`: sends what the state machine queued and hands its
	/// events to the app.
	private func flush() {
		let (frames, events) = sm.drain()
		for f in frames {
			socket?.send(f, generation: generation)
		}
		for e in events {
			handle(e)
		}
	}

	private func handle(_ e: ProtocolEvent) {
		switch e {
		case .queryChanged(let c):
			for s in (sinks[c.queryId] ?? [:]).sorted(by: { $0.key < $1.key }) {
				s.value.deliver(c.result.asResult, c.ts)
			}
		case .answered(let key, let r):
			waiters.removeValue(forKey: key)?(r)
		case .retry(let key, let after):
			let delay = Double.random(in: after / 2...after)
			Task.detached { [weak self] in
				try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
				self?.retry(key)
			}
		case .runAction(let info):
			run(info)
		case .cancelAction(let key):
			running.removeValue(forKey: key)?.cancel()
		case .connected:
			setStateLocked(.connected)
		case .resumed:
			socket?.resetBackoff()
		case .queryRejected(let q, let err):
			if let ss = sinks.removeValue(forKey: q) {
				for s in ss.values {
					s.deliver(.failure(err), 0)
					s.finish()
				}
			}
		case .fatal(let err):
			// Frames still in flight on this connection mean nothing now.
			let g = generation
			generation = -1
			sm.connectionLost(reason: err.description)
			flush()
			Task.detached { [weak self] in
				self?.socket?.drop(generation: g, reason: err.description, code: 1002)
			}
		}
	}

	private func retry(_ key: Int) {
		lock.lock()
		defer { lock.unlock() }
		sm.retry(key: key, now: now)
		flush()
	}

	/// Under `lock`: starts a provider call in its own task.
	private func run(_ info: ActionCallInfo) {
		let exact = providers.first { !$0.pattern.hasSuffix("/*") && $0.matches(info.udfPath) }
		guard let entry = exact ?? providers.first(where: { $0.matches(info.udfPath) }) else {
			sm.actionResult(info, .failure(ProviderError(code: -32601,
			    message: "no handler for \(info.udfPath)", data: nil)))
			return
		}
		let call = ActionCall(id: info.callId.stringValue ?? info.callId.jsonText, udfPath: info.udfPath,
		    args: info.args, sessionId: info.sessionId)
		running[info.callKey] = Task.detached { [weak self] in
			let result: Result<JSONValue, ProviderError>
			do {
				let v = try await entry.handler(call)
				result = .success(try JSONValue(encoding: v))
			} catch let e as ActionError {
				result = .failure(ProviderError(code: e.code, message: e.message, data: e.data))
			} catch {
				result = .failure(ProviderError(code: -32000, message: "\(error)", data: nil))
			}
			self?.finished(info, result)
		}
	}

	private func finished(_ info: ActionCallInfo, _ r: Result<JSONValue, ProviderError>) {
		lock.lock()
		defer { lock.unlock() }
		running[info.callKey] = nil
		sm.actionResult(info, r)
		flush()
	}

	// MARK: connection state

	private func setState(_ s: ConnectionState) {
		lock.lock()
		defer { lock.unlock() }
		setStateLocked(s)
	}

	private func setStateLocked(_ s: ConnectionState) {
		if isClosed, s != .closed {
			return
		}
		// Connected means answered: the socket manager's "connecting"
		// after an open does not undo it, its next state does.
		state = s
		for c in stateObservers.values {
			c.yield(s)
		}
		if s == .closed {
			for c in stateObservers.values {
				c.finish()
			}
			stateObservers = [:]
		}
	}

	var connectionState: ConnectionState {
		lock.lock()
		defer { lock.unlock() }
		return state
	}

	func connectionStates() -> AsyncStream<ConnectionState> {
		let (stream, cont) = AsyncStream.makeStream(of: ConnectionState.self,
		    bufferingPolicy: .unbounded)
		lock.lock()
		defer { lock.unlock() }
		let key = takeKey()
		cont.yield(state)
		if state == .closed {
			cont.finish()
			return stream
		}
		stateObservers[key] = cont
		// Not synchronously: finish() runs this, and may do so under the lock.
		cont.onTermination = { [weak self] _ in
			Task.detached {
				self?.removeObserver(key)
			}
		}
		return stream
	}

	private func removeObserver(_ key: Int) {
		lock.lock()
		defer { lock.unlock() }
		stateObservers[key] = nil
	}

	var stats: ConnectionStats {
		lock.lock()
		defer { lock.unlock() }
		return ConnectionStats(reconnects: sm.connectionCount,
		    mutationsInFlight: sm.mutationsInFlight, actionsInFlight: sm.actionsInFlight)
	}

	/// For tests: what the protocol layer holds and has done.
	var inspect: (localQueries: Int, features: [String], diffs: Int, unchanged: Int, chunked: Int) {
		lock.withLock {
			(sm.local.queries.count, sm.features, sm.remote.diffsApplied, sm.remote.unchangedTaken,
			    sm.chunkedTransitions)
		}
	}

	// MARK: the app's side

	private func takeKey() -> Int {
		let k = nextKey
		nextKey += 1
		return k
	}

	/// Adds a subscriber; returns a token for `unsubscribe`.  The cached
	/// result, if any, is delivered before this returns (into the
	/// subscriber's buffer: the app sees it on its next read).
	func subscribe(udfPath: String, args: JSONValue, sink: QuerySink) -> (queryId: Int, key: Int) {
		lock.lock()
		defer { lock.unlock() }
		let key = takeKey()
		if isClosed {
			sink.deliver(.failure(.closed), 0)
			sink.finish()
			return (-1, key)
		}
		let (q, cached) = sm.subscribe(udfPath: udfPath, args: args)
		sinks[q, default: [:]][key] = sink
		if let cached {
			sink.deliver(cached.asResult, sm.remote.ts(q))
		}
		flush()
		return (q, key)
	}

	func unsubscribe(queryId: Int, key: Int) {
		lock.lock()
		defer { lock.unlock() }
		guard sinks[queryId]?.removeValue(forKey: key) != nil else {
			return
		}
		if sinks[queryId]?.isEmpty == true {
			sinks[queryId] = nil
		}
		sm.unsubscribe(queryId: queryId)
		flush()
	}

	/// Starts a request; `done` gets its answer (the JSON-RPC result).
	func request(_ start: (inout SyncProtocol, Int, Double) -> Void,
	    done: @escaping @Sendable (Result<JSONValue, TinyvexError>) -> Void) {
		lock.lock()
		defer { lock.unlock() }
		let key = takeKey()
		waiters[key] = done
		start(&sm, key, now)
		flush()
	}

	func call(_ start: (inout SyncProtocol, Int, Double) -> Void) async -> Result<JSONValue, TinyvexError> {
		await withCheckedContinuation { (c: CheckedContinuation<Result<JSONValue, TinyvexError>, Never>) in
			request(start) { c.resume(returning: $0) }
		}
	}

	func addProvider(_ p: ProviderEntry) {
		lock.lock()
		defer { lock.unlock() }
		providers.append(p)
	}

	func removeProvider(_ pattern: String) {
		lock.lock()
		defer { lock.unlock() }
		providers.removeAll { $0.pattern == pattern }
	}

	func reconnect() {
		socket?.reconnectNow()
	}

	func close() {
		lock.lock()
		if isClosed {
			lock.unlock()
			return
		}
		isClosed = true
		sm.close()
		flush()
		let all = sinks
		sinks = [:]
		// A handler usually holds its client: let go of it, or the two
		// keep each other.
		providers = []
		lock.unlock()
		for ss in all.values {
			for s in ss.values {
				s.finish()
			}
		}
		socket?.close()
	}
}

/// Counters of the client's connection.
public struct ConnectionStats: Sendable, Equatable {
	/// Connections lost so far (each one followed by a reconnect).
	public var reconnects: Int
	/// Mutations sent or waiting to be, not answered yet.
	public var mutationsInFlight: Int
	/// Actions sent or waiting to be, not answered yet.
	public var actionsInFlight: Int
}
