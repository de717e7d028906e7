// What the server has sent: the version of the last transition and, per
// query, its result (a value with its hash, or an error).  Every
// transition is checked against the version before it; QueryDiff and
// QueryUnchanged are applied here.  Values survive a reconnect so that a
// re-added query can name the hash it already holds (knownHash).

/// A query's latest result.
enum QueryResult: Sendable, Equatable {
	case value(JSONValue, hash: String?)
	case failed(TinyvexError)

	var asResult: Result<JSONValue, TinyvexError> {
		switch self {
		case .value(let v, _): return .success(v)
		case .failed(let e): return .failure(e)
		}
	}
}

/// `{querySet, identity, ts}`.
struct StateVersion: Sendable, Equatable {
	var querySet: Int64 = 0
	var identity: Int64 = 0
	var ts: Int64 = 0

	init() {}

	init(wire v: JSONValue?) throws(TinyvexError) {
		guard let v, let qs = v["querySet"]?.int64Value, let id = v["identity"]?.int64Value,
		    let ts = v["ts"]?.int64Value else {
			throw TinyvexError.invalidResponse("bad version \(v?.jsonText ?? "missing")")
		}
		querySet = qs
		identity = id
		self.ts = ts
	}
}

/// One change a transition made to a query, for its subscribers.
struct QueryChange: Sendable, Equatable {
	let queryId: Int
	let result: QueryResult
	let ts: Int64
}

struct RemoteQuerySet: Sendable {
	private(set) var version = StateVersion()
	private(set) var results: [Int: QueryResult] = [:]
	/// Queries that hold a value on this connection (a diff may follow).
	private var held: Set<Int> = []
	/// The ts each query's result was last sent or confirmed at.
	private var resultTs: [Int: Int64] = [:]
	/// QueryDiffs applied and QueryUnchanged taken, for tests and stats.
	private(set) var diffsApplied = 0
	private(set) var unchangedTaken = 0

	func result(_ queryId: Int) -> QueryResult? {
		results[queryId]
	}

	/// The hash of the value held for a query, for `knownHash`.
	func knownHash(_ queryId: Int) -> String? {
		if case .value(_, let h)? = results[queryId] {
			return h
		}
		return nil
	}

	/// A new connection: versions restart, no value is held on it, the
	/// values themselves stay for knownHash.
	mutating func reset() {
		version = StateVersion()
		held = []
	}

	mutating func forget(_ queryId: Int) {
		results[queryId] = nil
		held.remove(queryId)
		resultTs[queryId] = nil
	}

	/// A ts a query's result is consistent at: the last transition's,
	/// on the connection that holds it, else the one it came with.
	func ts(_ queryId: Int) -> Int64 {
		max(resultTs[queryId] ?? 0, version.ts)
	}

	/// Applies one transition's params.  `udfPath` names a query's
	/// function (to read its diffs); a query it does not know is one the
	/// app has removed since, and its result is dropped.  Returns the
	/// changes to deliver in `changes`; throws on a broken sequence or a
	/// malformed modification (the caller resumes on a new connection),
	/// after which `changes` still holds those applied before it: their
	/// hashes are the ones a resume names, so they must be delivered.
	/// A value re-sent after a reconnect that equals the one held is not
	/// a change.
	mutating func apply(_ t: JSONValue, udfPath: (Int) -> String?,
	    into changes: inout [QueryChange]) throws(TinyvexError) {
		let start = try StateVersion(wire: t["startVersion"])
		let end = try StateVersion(wire: t["endVersion"])
		guard start == version else {
			throw TinyvexError.invalidResponse(
			    "transition starts at \(start) but the last ended at \(version)")
		}
		guard end.querySet >= start.querySet, end.ts >= start.ts else {
			throw TinyvexError.invalidResponse("transition goes backwards")
		}
		guard let mods = t["modifications"]?.arrayValue else {
			throw TinyvexError.invalidResponse("transition without modifications")
		}
		for m in mods {
			guard let type = m["type"]?.stringValue, let q = m["queryId"]?.intValue else {
				throw TinyvexError.invalidResponse("bad modification \(m.jsonText.prefix(200))")
			}
			let path = udfPath(q)
			if path != nil {
				resultTs[q] = end.ts
			}
			switch type {
			case "QueryUpdated":
				guard let v = m["value"] else {
					throw TinyvexError.invalidResponse("QueryUpdated without value")
				}
				let h = m["hash"]?.stringValue
				if !held.contains(q), case .value(let old, let oldHash)? = results[q],
				    (h != nil && h == oldHash) || old == v {
					set(q, .value(old, hash: h ?? oldHash), known: path != nil)
					continue
				}
				set(q, .value(v, hash: h), known: path != nil)
			case "QueryFailed":
				guard let e = m["error"] else {
					throw TinyvexError.invalidResponse("QueryFailed without error")
				}
				results[q] = path != nil ? .failed(TinyvexError.fromWire(e)) : nil
				held.remove(q)
			case "QueryRemoved":
				held.remove(q)
				if path == nil {
					results[q] = nil
				}
				continue
			case "QueryDiff":
				guard held.contains(q), case .value(let old, _)? = results[q] else {
					throw TinyvexError.invalidResponse("QueryDiff for query \(q), which holds no value")
				}
				guard let ops = m["ops"]?.arrayValue else {
					throw TinyvexError.invalidResponse("QueryDiff without ops")
				}
				let v = try Diff.apply(ops: ops, fields: m["fields"], to: old, udfPath: path)
				diffsApplied += 1
				set(q, .value(v, hash: m["hash"]?.stringValue), known: path != nil)
			case "QueryUnchanged":
				guard case .value(_, let h)? = results[q], let h, h == m["hash"]?.stringValue else {
					throw TinyvexError.invalidResponse("QueryUnchanged for query \(q) with another hash")
				}
				held.insert(q)
				unchangedTaken += 1
				continue
			default:
				throw TinyvexError.invalidResponse("unknown modification \(type)")
			}
			if path != nil, let r = results[q] {
				changes.append(QueryChange(queryId: q, result: r, ts: end.ts))
			}
		}
		version = end
	}

	private mutating func set(_ q: Int, _ r: QueryResult, known: Bool) {
		if known {
			results[q] = r
			held.insert(q)
		} else {
			results[q] = nil
			held.remove(q)
		}
	}
}

extension StateVersion: CustomStringConvertible {
	var description: String { "{\(querySet), \(identity), \(ts)}" }
}
