// The queries the app wants: one entry per distinct (udfPath, canonical
// args), reference-counted across subscribers, with the query-set version
// last sent to the server.  Knows nothing of sockets; SyncProtocol turns
// its changes into tinyvex/modifyQuerySet requests.

/// One query of the local set.
struct LocalQuery: Sendable {
	let queryId: Int
	let udfPath: String
	let args: JSONValue
	/// Subscribers sharing this query.
	var subscribers: Int
	/// For a live `db/paginate` page without `endCursor`: the end its
	/// first result reached (its `continueCursor`; for a page that was
	/// done, the end of the index, which keeps taking documents added
	/// after it), passed as `endCursor` when the page is re-added after
	/// a reconnect.  Nil until that first result.
	var pinnedEnd: String?

	/// The args to send in an Add: the page's pinned end added.
	var addArgs: JSONValue {
		guard let end = pinnedEnd, case .object(var o) = args, o["endCursor"] == nil else {
			return args
		}
		o["endCursor"] = .string(end)
		return .object(o)
	}
}

struct LocalQuerySet: Sendable {
	/// Highest queryId the protocol allows.
	static let maxQueryId = 2_147_483_647

	private(set) var queries: [Int: LocalQuery] = [:]
	private var byToken: [String: Int] = [:]
	private var nextQueryId = 0
	/// The query-set version the server has been asked to reach.
	var version = 0

	static func token(_ udfPath: String, _ args: JSONValue) -> String {
		udfPath + "\u{0}" + args.jsonText
	}

	/// Adds a subscriber; returns the queryId and whether the query is
	/// new (and must be added on the server).
	mutating func subscribe(udfPath: String, args: JSONValue) -> (queryId: Int, added: Bool) {
		let t = Self.token(udfPath, args)
		if let id = byToken[t], var q = queries[id] {
			q.subscribers += 1
			queries[id] = q
			return (id, false)
		}
		let id = nextQueryId
		nextQueryId = nextQueryId >= Self.maxQueryId ? 0 : nextQueryId + 1
		queries[id] = LocalQuery(queryId: id, udfPath: udfPath, args: args,
		    subscribers: 1, pinnedEnd: nil)
		byToken[t] = id
		return (id, true)
	}

	/// Drops a subscriber; returns true when it was the last one and the
	/// query is gone (to be removed on the server).
	mutating func unsubscribe(queryId: Int) -> Bool {
		guard var q = queries[queryId] else {
			return false
		}
		q.subscribers -= 1
		if q.subscribers > 0 {
			queries[queryId] = q
			return false
		}
		queries[queryId] = nil
		byToken[Self.token(q.udfPath, q.args)] = nil
		return true
	}

	/// Removes a query whatever its subscribers (the server refused it).
	mutating func drop(queryId: Int) {
		if let q = queries.removeValue(forKey: queryId) {
			byToken[Self.token(q.udfPath, q.args)] = nil
		}
	}

	mutating func pin(queryId: Int, end: String?) {
		queries[queryId]?.pinnedEnd = end
	}

	func query(_ id: Int) -> LocalQuery? {
		queries[id]
	}
}
