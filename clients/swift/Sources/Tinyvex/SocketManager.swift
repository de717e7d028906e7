// The socket manager: keeps one connection open.  It reconnects on any
// loss with exponential backoff (from 100 ms, doubling, capped at 10 s,
// full jitter; the count is reset by the client once the connection is
// whole again), reconnects at once when asked, and treats a silence of
// 45 s (the server sends something at least every 15 s) as a dead
// connection.  It knows nothing of the protocol: frames go to its owner
// tagged with the connection's generation, so a frame of an old
// connection can never be taken for one of the new.

import Foundation

/// The state of the client's connection.
public enum ConnectionState: Sendable, Equatable {
	/// Opening a connection (or waiting for the connect answer).
	case connecting
	/// Connected and answered.
	case connected
	/// The connection was lost for `reason`; the next attempt is at
	/// `nextRetry`.
	case disconnected(reason: String, nextRetry: Date)
	/// The client was closed.
	case closed
}

final class SocketManager: @unchecked Sendable {
	/// First reconnect delay (seconds), doubled per failed attempt.
	static let backoffBase = 0.1
	/// Longest reconnect delay (seconds).
	static let backoffCap = 10.0
	/// How often the liveness check runs (seconds).
	static let livenessTick = 0.5

	struct Callbacks: Sendable {
		/// A connection opened (generation).
		let opened: @Sendable (Int) -> Void
		/// A text frame of connection generation.
		let text: @Sendable (String, Int) -> Void
		/// Connection generation is gone, for this reason.
		let lost: @Sendable (String, Int) -> Void
		/// The state to show the app.
		let state: @Sendable (ConnectionState) -> Void
	}

	private let transport: any WebSocketTransport
	private let url: URL
	private let headers: [String: String]
	private let liveness: Double
	private let callbacks: Callbacks
	private let clock = ContinuousClock()

	private let lock = NSLock()
	// Everything below is guarded by `lock`.
	private var conn: (any WebSocketConnection)?
	private var generation = 0
	private var lastFrame: ContinuousClock.Instant
	private var attempt = 0
	private var closed = false
	private var started = false
	private var lossReason = ""
	private var lossWaiter: CheckedContinuation<String, Never>?
	private var sleepWaiter: CheckedContinuation<Void, Never>?
	private var sleepSeq = 0
	private var sleepFired = false
	/// Reconnects so far.
	private(set) var reconnects = 0

	init(transport: any WebSocketTransport, url: URL, headers: [String: String],
	    liveness: Double, callbacks: Callbacks) {
		self.transport = transport
		self.url = url
		self.headers = headers
		self.liveness = liveness
		self.callbacks = callbacks
		lastFrame = clock.now
	}

	func start() {
		lock.lock()
		let go = !started && !closed
		started = true
		lock.unlock()
		if go {
			Task.detached { [self] in
				await run()
			}
		}
	}

	/// Sends a frame on the current connection; without one it is
	/// dropped (the protocol resends what matters after a reconnect).
	func send(_ text: String, generation g: Int) {
		lock.lock()
		let c = g == generation ? conn : nil
		lock.unlock()
		c?.send(text)
	}

	/// The connection is whole again: the next loss starts the backoff
	/// from its first step.
	func resetBackoff() {
		lock.lock()
		attempt = 0
		lock.unlock()
	}

	/// Drops the current connection (if `g` is still current) and
	/// starts over.
	func drop(generation g: Int, reason: String, code: UInt16) {
		lock.lock()
		guard g == generation, let c = conn else {
			lock.unlock()
			return
		}
		let w = lose(reason)
		lock.unlock()
		c.close(code: code)
		callbacks.lost(reason, g)
		w?.resume(returning: reason)
	}

	/// Reconnects at once: drops the connection, or cuts the backoff
	/// wait short.
	func reconnectNow() {
		lock.lock()
		let g = generation
		attempt = 0
		lock.unlock()
		drop(generation: g, reason: "reconnect requested", code: 1000)
		wake(nil)
	}

	func close() {
		lock.lock()
		closed = true
		let g = generation
		let c = conn
		let w = c != nil ? lose("client closed") : nil
		lock.unlock()
		c?.close(code: 1000)
		if c != nil {
			callbacks.lost("client closed", g)
		}
		w?.resume(returning: "client closed")
		wake(nil)
		callbacks.state(.closed)
	}

	/// Under `lock`: forget the connection, move past its generation.
	private func lose(_ reason: String) -> CheckedContinuation<String, Never>? {
		conn = nil
		generation += 1
		lossReason = reason
		let w = lossWaiter
		lossWaiter = nil
		return w
	}

	private func event(_ ev: WebSocketEvent, generation g: Int) {
		switch ev {
		case .text(let s):
			lock.lock()
			guard g == generation else {
				lock.unlock()
				return
			}
			lastFrame = clock.now
			lock.unlock()
			callbacks.text(s, g)
		case .alive:
			lock.lock()
			if g == generation {
				lastFrame = clock.now
			}
			lock.unlock()
		case .closed(_, let reason):
			lock.lock()
			guard g == generation else {
				lock.unlock()
				return
			}
			let had = conn != nil
			let w = lose(reason)
			lock.unlock()
			if had {
				callbacks.lost(reason, g)
			}
			w?.resume(returning: reason)
		}
	}

	private func run() async {
		while true {
			let g: Int? = lock.withLock {
				if closed {
					return nil
				}
				generation += 1
				return generation
			}
			guard let g else {
				return
			}
			callbacks.state(.connecting)
			var reason: String
			do {
				let c = try await transport.connect(url: url, subprotocol: "tinyvex.v1",
				    headers: headers) { [weak self] ev in
					self?.event(ev, generation: g)
				}
				let current = lock.withLock {
					let current = g == generation && !closed
					if current {
						conn = c
						lastFrame = clock.now
					}
					return current
				}
				if current {
					callbacks.opened(g)
					reason = await waitForLoss(generation: g)
				} else {
					c.close(code: 1000)
					reason = lock.withLock { lossReason }
				}
			} catch {
				reason = error.description
			}
			let step: Int? = lock.withLock {
				if closed {
					return nil
				}
				let step = min(attempt, 16)
				attempt += 1
				reconnects += 1
				return step
			}
			guard let step else {
				return
			}
			let cap = min(Self.backoffCap, Self.backoffBase * Double(1 << step))
			let delay = Double.random(in: 0...cap)
			callbacks.state(.disconnected(reason: reason, nextRetry: Date().addingTimeInterval(delay)))
			await sleep(delay)
		}
	}

	/// Waits until connection `g` is lost, watching its liveness.
	private func waitForLoss(generation g: Int) async -> String {
		let limit = Duration.milliseconds(Int64(liveness * 1000))
		let watchdog = Task.detached { [self] in
			while !Task.isCancelled {
				try? await Task.sleep(nanoseconds: UInt64(Self.livenessTick * 1e9))
				let silent = lock.withLock { clock.now - lastFrame }
				if silent > limit {
					drop(generation: g, reason: "no frame from the server for \(Int(liveness)) s",
					    code: 1000)
					return
				}
			}
		}
		let reason = await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
			lock.lock()
			if generation != g {
				let r = lossReason
				lock.unlock()
				c.resume(returning: r)
				return
			}
			lossWaiter = c
			lock.unlock()
		}
		watchdog.cancel()
		return reason
	}

	private func sleep(_ seconds: Double) async {
		let id = lock.withLock {
			sleepSeq += 1
			sleepFired = false
			return sleepSeq
		}
		let timer = Task.detached { [self] in
			try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
			wake(id)
		}
		await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
			lock.lock()
			if closed || sleepFired {
				lock.unlock()
				c.resume()
				return
			}
			sleepWaiter = c
			lock.unlock()
		}
		timer.cancel()
	}

	/// Ends the backoff wait `id` (nil: whichever is running).
	private func wake(_ id: Int?) {
		lock.lock()
		if let id, id != sleepSeq {
			lock.unlock()
			return
		}
		sleepFired = true
		let s = sleepWaiter
		sleepWaiter = nil
		lock.unlock()
		s?.resume()
	}
}
