// URLSessionWebSocketTask behind the transport protocol, on Apple
// platforms (the Linux toolchain's FoundationNetworking lacks WebSocket
// support: there the POSIX transport is used).  Transitions come in
// chunks under its 1 MiB message limit; the limit is raised all the same
// for one-shot answers.

#if canImport(Darwin)
import Foundation

struct URLSessionTransport: WebSocketTransport {
	/// Largest message accepted.
	static let maxMessage = 64 * 1024 * 1024

	func connect(url: URL, subprotocol: String, headers: [String: String],
	    onEvent: @escaping @Sendable (WebSocketEvent) -> Void) async throws(TransportError) -> any WebSocketConnection {
		var req = URLRequest(url: url)
		req.setValue(subprotocol, forHTTPHeaderField: "Sec-WebSocket-Protocol")
		for (k, v) in headers {
			req.setValue(v, forHTTPHeaderField: k)
		}
		let session = URLSession(configuration: .ephemeral)
		let task = session.webSocketTask(with: req)
		task.maximumMessageSize = Self.maxMessage
		task.resume()
		do {
			// The pong proves the upgrade succeeded.
			try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
				task.sendPing { error in
					if let error {
						c.resume(throwing: error)
					} else {
						c.resume()
					}
				}
			}
		} catch {
			task.cancel(with: .abnormalClosure, reason: nil)
			session.invalidateAndCancel()
			throw TransportError("\(error.localizedDescription)")
		}
		let conn = URLSessionConnection(session: session, task: task, onEvent: onEvent)
		conn.receiveNext()
		return conn
	}
}

final class URLSessionConnection: WebSocketConnection, @unchecked Sendable {
	private let session: URLSession
	private let task: URLSessionWebSocketTask
	private let onEvent: @Sendable (WebSocketEvent) -> Void
	private let lock = NSLock()
	/// Guarded by `lock`: `.closed` was reported.
	private var finished = false

	init(session: URLSession, task: URLSessionWebSocketTask,
	    onEvent: @escaping @Sendable (WebSocketEvent) -> Void) {
		self.session = session
		self.task = task
		self.onEvent = onEvent
	}

	func receiveNext() {
		task.receive { [self] result in
			switch result {
			case .success(.string(let s)):
				onEvent(.text(s))
				receiveNext()
			case .success:
				task.cancel(with: .unsupportedData, reason: nil)
				finish(code: nil, reason: "binary frame from the server")
			case .failure(let error):
				let code = task.closeCode == .invalid ? nil : task.closeCode.rawValue
				finish(code: code, reason: error.localizedDescription)
			}
		}
	}

	private func finish(code: Int?, reason: String) {
		lock.lock()
		let first = !finished
		finished = true
		lock.unlock()
		if first {
			session.invalidateAndCancel()
			onEvent(.closed(code: code, reason: reason))
		}
	}

	func send(_ text: String) {
		task.send(.string(text)) { [self] error in
			if let error {
				task.cancel(with: .abnormalClosure, reason: nil)
				finish(code: nil, reason: "send: \(error.localizedDescription)")
			}
		}
	}

	func close(code: UInt16) {
		let c = URLSessionWebSocketTask.CloseCode(rawValue: Int(code)) ?? .normalClosure
		task.cancel(with: c, reason: nil)
	}
}
#endif
