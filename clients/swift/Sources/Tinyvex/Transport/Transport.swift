// The transport under the socket manager: one WebSocket connection that
// carries text messages.  Two implementations: URLSessionWebSocketTask on
// Apple platforms, and on Linux (whose FoundationNetworking cannot do
// WebSockets) the package's own RFC 6455 client over POSIX sockets.

import Foundation

/// What a connection reports, from its own thread, in order.
enum WebSocketEvent: Sendable {
	case text(String)
	/// A control frame (ping, pong) arrived: the peer is alive.
	case alive
	/// The connection is gone (the last event): the close code the peer
	/// sent (nil if none) and a reason for the log and the next connect.
	case closed(code: Int?, reason: String)
}

/// One open WebSocket connection.
protocol WebSocketConnection: AnyObject, Sendable {
	/// Queues one text message; never blocks.  A failure shows up as
	/// the `.closed` event.
	func send(_ text: String)
	/// Starts the close handshake with `code` and releases the socket;
	/// `.closed` follows.
	func close(code: UInt16)
}

/// Opens connections.
protocol WebSocketTransport: Sendable {
	/// Opens `url` offering the subprotocol, with extra upgrade headers;
	/// every frame received then goes to `onEvent` (never concurrently,
	/// never before this returns... except that it may run on another
	/// thread as soon as it returns).
	func connect(url: URL, subprotocol: String, headers: [String: String],
	    onEvent: @escaping @Sendable (WebSocketEvent) -> Void) async throws(TransportError) -> any WebSocketConnection
}

/// Why a connection could not be opened.
struct TransportError: Error, Sendable, CustomStringConvertible {
	let description: String

	init(_ d: String) {
		description = d
	}
}

enum Transports {
	/// The transport that works on this platform.
	static var platformDefault: any WebSocketTransport {
		#if canImport(Darwin)
		return URLSessionTransport()
		#else
		return POSIXWebSocketTransport()
		#endif
	}
}
