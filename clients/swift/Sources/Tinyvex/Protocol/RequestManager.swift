// The requests in flight: JSON-RPC ids of the current connection and what
// each stands for, and the app's calls by key.  Mutations carry a
// requestId derived from their key, are resent (same requestId) on every
// new connection until answered, and are retried while the server
// answers Unavailable or Overloaded, until a deadline.  Actions go out
// once: one sent on a connection that is lost fails with outcome
// unknown.  One-shot queries and provide calls are resent.  No I/O:
// sending means building the frame text.

/// What a JSON-RPC id of the current connection stands for.
enum PendingRequest: Sendable {
	case connect
	/// A modifyQuerySet: the queries it added, and whether it is the
	/// one re-adding every query after a connect.
	case modify(added: [Int], resume: Bool)
	case mutation(Int)
	case action(Int)
	case call(Int)
	/// The renewal of the provided functions on a new connection.
	case provide([String])
}

struct RequestManager: Sendable {
	/// First delay of a mutation retry (seconds), doubled per attempt.
	static let retryBase = 0.1
	/// Longest delay between mutation retries (seconds).
	static let retryCap = 10.0

	private struct Mutation: Sendable {
		let udfPath: String
		let args: JSONValue
		let requestId: String
		/// When it was first sent; the retry deadline counts from it.
		var firstSent: Double?
		var attempts = 0
		/// Its id on the current connection, nil: not sent on it.
		var rpcId: Int?
		/// Answered Unavailable or Overloaded, waiting for `retry`.
		var waitingRetry = false
	}

	/// An action, a one-shot query or a provide call.
	struct Call: Sendable {
		let method: String
		let params: JSONValue
		var rpcId: Int?
	}

	private var nextRpcId = 1
	private var pending: [Int: PendingRequest] = [:]
	private var mutations: [Int: Mutation] = [:]
	private var actions: [Int: Call] = [:]
	private var calls: [Int: Call] = [:]

	var mutationCount: Int { mutations.count }
	var actionCount: Int { actions.count }

	/// A request frame with a new id, recorded as `what`.
	mutating func frame(_ method: String, _ params: JSONValue, _ what: PendingRequest) -> (id: Int, text: String) {
		let id = nextRpcId
		nextRpcId += 1
		pending[id] = what
		let msg: JSONValue = ["jsonrpc": "2.0", "id": .number(Double(id)), "method": .string(method),
		    "params": params]
		return (id, msg.jsonText)
	}

	/// The request an answer's id names (once).
	mutating func answered(_ id: Int) -> PendingRequest? {
		pending.removeValue(forKey: id)
	}

	mutating func addMutation(key: Int, udfPath: String, args: JSONValue) {
		mutations[key] = Mutation(udfPath: udfPath, args: args, requestId: "r\(key)")
	}

	mutating func addAction(key: Int, _ call: Call) {
		actions[key] = call
	}

	mutating func addCall(key: Int, _ call: Call) {
		calls[key] = call
	}

	/// Mutation `key`'s frame (its first send sets the deadline's start);
	/// nil if it is not waiting to be sent.
	mutating func sendMutation(_ key: Int, now: Double) -> String? {
		guard var m = mutations[key], m.rpcId == nil else {
			return nil
		}
		if m.firstSent == nil {
			m.firstSent = now
		}
		m.waitingRetry = false
		let (id, text) = frame("tinyvex/mutation", ["udfPath": .string(m.udfPath), "args": m.args,
		    "requestId": .string(m.requestId)], .mutation(key))
		m.rpcId = id
		mutations[key] = m
		return text
	}

	/// A retry of mutation `key` is due: its frame, if it still waits.
	mutating func retryMutation(_ key: Int, now: Double) -> String? {
		guard mutations[key]?.waitingRetry == true else {
			return nil
		}
		return sendMutation(key, now: now)
	}

	/// Mutation `key` was answered with `error`: the delay before a retry
	/// if the library retries it (Unavailable or Overloaded, before the
	/// deadline), else nil and the mutation is done.
	mutating func mutationFailed(_ key: Int, _ error: TinyvexError, now: Double,
	    deadline: Double) -> Double? {
		guard var m = mutations[key] else {
			return nil
		}
		guard error.code == -32008 || error.code == -32007, let first = m.firstSent,
		    first + deadline > now else {
			mutations[key] = nil
			return nil
		}
		m.rpcId = nil
		m.waitingRetry = true
		m.attempts += 1
		mutations[key] = m
		return min(Self.retryCap, Self.retryBase * Double(1 << min(m.attempts - 1, 16)))
	}

	/// Mutation `key` has its outcome; true if it was in flight.
	mutating func finishMutation(_ key: Int) -> Bool {
		mutations.removeValue(forKey: key) != nil
	}

	mutating func finishAction(_ key: Int) {
		actions[key] = nil
	}

	mutating func finishCall(_ key: Int) -> Call? {
		calls.removeValue(forKey: key)
	}

	mutating func sendAction(_ key: Int) -> String? {
		guard let a = actions[key], a.rpcId == nil else {
			return nil
		}
		let (id, text) = frame(a.method, a.params, .action(key))
		actions[key]?.rpcId = id
		return text
	}

	mutating func sendCall(_ key: Int) -> String? {
		guard let c = calls[key], c.rpcId == nil else {
			return nil
		}
		let (id, text) = frame(c.method, c.params, .call(key))
		calls[key]?.rpcId = id
		return text
	}

	/// The connection is gone: its ids mean nothing now.  Returns the
	/// actions that had been sent on it (lost, outcome unknown); every
	/// other request waits to be sent again.
	mutating func connectionLost() -> [Int] {
		pending = [:]
		for k in mutations.keys {
			mutations[k]?.rpcId = nil
		}
		for k in calls.keys {
			calls[k]?.rpcId = nil
		}
		let lost = actions.filter { $0.value.rpcId != nil }.keys.sorted()
		for k in lost {
			actions[k] = nil
		}
		return lost
	}

	/// After a connect: every mutation not answered (in the order they
	/// were made, same requestId), then the actions and calls that
	/// waited.
	mutating func resend(now: Double) -> [String] {
		var out: [String] = []
		for k in mutations.keys.sorted() {
			if let f = sendMutation(k, now: now) {
				out.append(f)
			}
		}
		for k in actions.keys.sorted() {
			if let f = sendAction(k) {
				out.append(f)
			}
		}
		for k in calls.keys.sorted() {
			if let f = sendCall(k) {
				out.append(f)
			}
		}
		return out
	}

	/// The client is closed: every key waiting, in order; nothing is
	/// left.
	mutating func closeAll() -> [Int] {
		let keys = (Array(mutations.keys) + Array(actions.keys) + Array(calls.keys)).sorted()
		mutations = [:]
		actions = [:]
		calls = [:]
		pending = [:]
		return keys
	}
}
