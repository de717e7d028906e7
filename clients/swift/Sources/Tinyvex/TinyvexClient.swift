// The public client: subscriptions as async sequences of results, async
// mutations, actions and one-shot queries, paginated subscriptions,
// providers, and the connection's state.  Errors are values of
// TinyvexError; nothing the server sends can crash the app.

import Foundation

/// How a client connects and behaves.
public struct TinyvexOptions: Sendable {
	/// Sent as `Authorization: Bearer` on the upgrade and as `token` in
	/// `tinyvex/connect`.
	public var token: String?
	/// How long a mutation answered Unavailable or Overloaded is retried
	/// before the caller sees the error (seconds).
	public var mutationDeadline: Double
	/// Silence after which a connection is taken for dead (seconds).
	public var livenessTimeout: Double
	/// Protocol additions asked for in `tinyvex/connect`.
	var features = ["diff", "resume"]

	public init(token: String? = nil, mutationDeadline: Double = 60, livenessTimeout: Double = 45) {
		self.token = token
		self.mutationDeadline = mutationDeadline
		self.livenessTimeout = livenessTimeout
	}
}

/// A connection to a Tinyvex gateway, kept open (and resumed after every
/// loss) until `close()` or the client is released.
public final class TinyvexClient: Sendable {
	public typealias Options = TinyvexOptions

	let core: ClientCore

	/// Starts connecting to `url` (e.g. `ws://127.0.0.1:7878/sync`).
	public convenience init(url: URL, options: Options = Options()) {
		self.init(url: url, options: options, transport: Transports.platformDefault)
	}

	init(url: URL, options: Options, transport: any WebSocketTransport) {
		core = ClientCore(url: url, options: options, transport: transport)
	}

	deinit {
		core.close()
	}

	/// This client's session (for idempotent mutations across
	/// reconnects).
	public var sessionId: String { core.sessionId }

	/// Subscribes to a query: every new result, decoded as `T`, or the
	/// error that replaced it.  An error does not end the sequence: the
	/// query is retried by the server and its next result follows.
	/// Identical subscriptions share one query.  The sequence ends when
	/// the client closes; stopping the iteration unsubscribes.
	public func subscribe<T: Decodable & Sendable>(to udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:]),
	    yielding type: T.Type = T.self) -> AsyncStream<Result<T, TinyvexError>> {
		stream(udfPath, args) { r, _ in Self.decode(r, as: T.self) }
	}

	/// As `subscribe`, with the ts each result is consistent at.
	public func updates<T: Decodable & Sendable>(to udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:]),
	    yielding type: T.Type = T.self) -> AsyncStream<QueryUpdate<T>> {
		stream(udfPath, args) { r, ts in QueryUpdate(result: Self.decode(r, as: T.self), ts: ts) }
	}

	private func stream<E: Sendable>(_ udfPath: String, _ args: some Encodable & Sendable,
	    _ make: @escaping @Sendable (Result<JSONValue, TinyvexError>, Int64) -> E) -> AsyncStream<E> {
		let (stream, cont) = AsyncStream.makeStream(of: E.self,
		    bufferingPolicy: .bufferingNewest(Self.subscriptionBuffer))
		let a: JSONValue
		do {
			a = try JSONValue(encoding: args)
		} catch {
			cont.yield(make(.failure(error), 0))
			cont.finish()
			return stream
		}
		let sink = QuerySink(deliver: { r, ts in
			cont.yield(make(r, ts))
		}, finish: { cont.finish() })
		let (q, key) = core.subscribe(udfPath: udfPath, args: a, sink: sink)
		let core = self.core
		cont.onTermination = { _ in
			Task.detached {
				core.unsubscribe(queryId: q, key: key)
			}
		}
		return stream
	}

	/// Results waiting in a subscription that is not read are capped at
	/// this many; older ones are dropped (the newest always stays).
	static let subscriptionBuffer = 64

	static func decode<T: Decodable>(_ r: Result<JSONValue, TinyvexError>,
	    as: T.Type) -> Result<T, TinyvexError> {
		r.flatMap { (v) -> Result<T, TinyvexError> in
			do throws(TinyvexError) {
				return .success(try v.decode(T.self))
			} catch {
				return .failure(error)
			}
		}
	}

	/// Runs a mutation; its value decoded as `T`.  When it returns, every
	/// subscription of this client already shows the write.  Retried
	/// with the same requestId across reconnects and while the server is
	/// Unavailable or Overloaded (up to `mutationDeadline`), so it is
	/// applied exactly once.
	public func mutation<T: Decodable & Sendable>(_ udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:]),
	    returning type: T.Type = T.self) async throws(TinyvexError) -> T {
		try await mutationResult(udfPath, args: args, returning: type).value
	}

	/// A mutation whose value is not needed (or wanted as JSON).
	@discardableResult
	public func mutation(_ udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:])) async throws(TinyvexError) -> JSONValue {
		try await mutationResult(udfPath, args: args, returning: JSONValue.self).value
	}

	/// A mutation's value and the ts of its commit.
	public func mutationResult<T: Decodable & Sendable>(_ udfPath: String,
	    args: some Encodable & Sendable, returning: T.Type = T.self) async throws(TinyvexError) -> Timestamped<T> {
		let a = try JSONValue(encoding: args)
		let r = await core.call { sm, key, now in
			sm.mutation(key: key, udfPath: udfPath, args: a, now: now)
		}
		return try Self.valueAndTs(r, as: T.self)
	}

	/// Calls an action (run by a provider); its value decoded as `T`.
	/// An action is never resent: if the connection drops while it is in
	/// flight it fails with `.connectionLost(outcomeUnknown: true)`.
	public func action<T: Decodable & Sendable>(_ udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:]),
	    returning type: T.Type = T.self) async throws(TinyvexError) -> T {
		let a = try JSONValue(encoding: args)
		let r = await core.call { sm, key, _ in
			sm.action(key: key, udfPath: udfPath, args: a)
		}
		return try Self.valueAndTs(r, as: T.self).value
	}

	/// Reads a query once, without subscribing.
	public func query<T: Decodable & Sendable>(_ udfPath: String,
	    args: some Encodable & Sendable = JSONValue.object([:]),
	    returning type: T.Type = T.self) async throws(TinyvexError) -> T {
		let a = try JSONValue(encoding: args)
		let r = await core.call { sm, key, _ in
			sm.query(key: key, udfPath: udfPath, args: a)
		}
		return try Self.valueAndTs(r, as: T.self).value
	}

	static func valueAndTs<T: Decodable>(_ r: Result<JSONValue, TinyvexError>,
	    as: T.Type) throws(TinyvexError) -> Timestamped<T> {
		let res = try r.get()
		guard let v = res["value"] else {
			throw TinyvexError.invalidResponse("answer without value")
		}
		return Timestamped(value: try v.decode(T.self), ts: res["ts"]?.int64Value ?? 0)
	}

	/// Serves the function `name` (an exact udfPath, or a prefix ending
	/// in `/*`) from this client: every call runs `handler`, whose value
	/// (or thrown error, see `ActionError`) answers the caller.  Returns
	/// once the server has the registration; it is renewed after every
	/// reconnect, until a renewal is refused for good (e.g. Unauthorized).
	public func provide(_ name: String,
	    handler: @escaping @Sendable (ActionCall) async throws -> any Encodable & Sendable) async throws(TinyvexError) {
		core.addProvider(ProviderEntry(pattern: name, handler: handler))
		let r = await core.call { sm, key, _ in
			sm.provide(key: key, functions: [name])
		}
		if case .failure(let e) = r {
			core.removeProvider(name)
			throw e
		}
	}

	/// Stops serving `name` (as given to `provide`); calls already
	/// running finish.
	public func unprovide(_ name: String) async throws(TinyvexError) {
		let r = await core.call { sm, key, _ in
			sm.unprovide(key: key, functions: [name])
		}
		_ = try r.get()
		core.removeProvider(name)
	}

	/// The connection's state now, then every change, until the client
	/// closes.
	public var connectionStates: AsyncStream<ConnectionState> {
		core.connectionStates()
	}

	public var connectionState: ConnectionState {
		core.connectionState
	}

	public var stats: ConnectionStats {
		core.stats
	}

	/// Drops the connection and reconnects at once (e.g. when the network
	/// comes back).
	public func reconnect() {
		core.reconnect()
	}

	/// Closes the client: subscriptions end, calls in flight fail with
	/// `.closed`.
	public func close() {
		core.close()
	}
}

/// A subscription's result with the ts it is consistent at.
public struct QueryUpdate<T: Sendable>: Sendable {
	public let result: Result<T, TinyvexError>
	public let ts: Int64
}

/// A value with the ts of the commit (or read) it comes from.
public struct Timestamped<T: Sendable>: Sendable {
	public let value: T
	public let ts: Int64
}
