// The one error type of the client: every failure, from the server, the
// connection or the caller's own types, is a value of it.

/// An error of a Tinyvex call or subscription update.
public enum TinyvexError: Error, Sendable, Hashable {
	/// The server answered with a JSON-RPC error, or a query failed:
	/// `code` and `message` as sent, `kind` from `data.kind` (or the
	/// `kind` of a `QueryFailed`), `data` the whole `data` object.
	case server(code: Int, kind: String, message: String, data: JSONValue?)
	/// A value did not decode into the caller's type (or the caller's
	/// args did not encode); the text says where.
	case decoding(String)
	/// The connection dropped while the call was in flight.  With
	/// `outcomeUnknown` the server may or may not have acted on it (an
	/// action is never resent).
	case connectionLost(outcomeUnknown: Bool)
	/// The client was closed.
	case closed
	/// The server sent something that breaks the protocol.
	case invalidResponse(String)

	/// The server's code, or -32008 (Unavailable) for a lost connection,
	/// as the other Tinyvex clients report it.
	public var code: Int? {
		switch self {
		case .server(let code, _, _, _): return code
		case .connectionLost: return -32008
		default: return nil
		}
	}

	/// The server's kind, or "Unavailable" for a lost connection.
	public var kind: String? {
		switch self {
		case .server(_, let kind, _, _): return kind
		case .connectionLost: return "Unavailable"
		default: return nil
		}
	}

	/// The server's message, or the library's account of its own error.
	public var message: String {
		switch self {
		case .server(_, _, let message, _): return message
		default: return description
		}
	}

	/// The server's `data`; for a lost connection the library's own,
	/// `{kind: "Unavailable", outcome: "unknown"}` when the outcome is
	/// unknown, as the other Tinyvex clients report it.
	public var data: JSONValue? {
		switch self {
		case .server(_, _, _, let data): return data
		case .connectionLost(let unknown):
			return unknown ? ["kind": "Unavailable", "outcome": "unknown"] : ["kind": "Unavailable"]
		default: return nil
		}
	}

	/// An error object as the wire carries it: `{code, message, data:
	/// {kind, ...}}` (an answer) or `{code, kind, message}` (a
	/// QueryFailed).
	static func fromWire(_ e: JSONValue) -> TinyvexError {
		guard let code = e["code"]?.intValue else {
			return .invalidResponse("error without an integer code: \(e.jsonText.prefix(200))")
		}
		let message = e["message"]?.stringValue ?? ""
		let data = e["data"]
		let kind = e["kind"]?.stringValue ?? data?["kind"]?.stringValue ?? "Unknown"
		return .server(code: code, kind: kind, message: message, data: data)
	}
}

extension TinyvexError: CustomStringConvertible {
	public var description: String {
		switch self {
		case .server(let code, let kind, let message, _):
			return "\(kind) (\(code)): \(message)"
		case .decoding(let s): return "decoding: \(s)"
		case .connectionLost(let unknown):
			return unknown ? "connection lost, outcome unknown" : "connection lost"
		case .closed: return "client closed"
		case .invalidResponse(let s): return "invalid response: \(s)"
		}
	}
}
