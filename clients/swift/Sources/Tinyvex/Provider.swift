// What a provider's handler is given, and how it fails a call.

/// One call of a function this client provides (`tinyvex/runAction`).
/// The handler's task is cancelled when the server withdraws the call
/// (the caller went away, or it timed out): check `Task.isCancelled`.
public struct ActionCall: Sendable {
	/// The server's id of this call.
	public let id: String
	/// The function called (a provided name, or one under a provided
	/// `prefix/*`).
	public let udfPath: String
	/// The caller's args.
	public let args: JSONValue
	/// The caller's session.
	public let sessionId: String?

	/// The args as the handler's own type.
	public func args<T: Decodable>(as type: T.Type) throws(TinyvexError) -> T {
		try args.decode(T.self)
	}
}

/// Thrown by a provider's handler: the caller gets `ActionFailed` with
/// this message and `data`.  Any other error thrown is reported by its
/// description.
public struct ActionError: Error, Sendable {
	public var code: Int
	public var message: String
	public var data: JSONValue?

	public init(_ message: String, code: Int = -32000, data: JSONValue? = nil) {
		self.message = message
		self.code = code
		self.data = data
	}
}
