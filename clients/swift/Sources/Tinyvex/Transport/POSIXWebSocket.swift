// A small RFC 6455 client over POSIX sockets, for Linux, where the
// toolchain's URLSessionWebSocketTask compiles but fails at run time.
// One thread per connection opens the socket, does the upgrade and then
// reads frames (answering pings, joining fragments); writes go through a
// serial queue so that a caller never blocks and frames never interleave.
// Only ws:// (the server listens on loopback).

#if canImport(Glibc)
import Foundation
import Glibc

struct POSIXWebSocketTransport: WebSocketTransport {
	/// Longest wait for the TCP connection and for the upgrade answer.
	static let connectTimeout: Int32 = 10_000	// milliseconds

	func connect(url: URL, subprotocol: String, headers: [String: String],
	    onEvent: @escaping @Sendable (WebSocketEvent) -> Void) async throws(TransportError) -> any WebSocketConnection {
		guard url.scheme == "ws", let host = url.host, !host.isEmpty else {
			throw TransportError("only ws:// URLs are supported: \(url)")
		}
		let port = url.port ?? 80
		var path = url.path.isEmpty ? "/" : url.path
		if let q = url.query {
			path += "?" + q
		}
		let hostHeader = (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
		let request = (host: host, port: port, path: path, hostHeader: hostHeader)
		do {
			return try await withCheckedThrowingContinuation { (c: CheckedContinuation<any WebSocketConnection, any Error>) in
				let t = Thread {
					let ws: POSIXWebSocket
					do {
						ws = try POSIXWebSocket.open(host: request.host, port: request.port,
						    path: request.path, hostHeader: request.hostHeader,
						    subprotocol: subprotocol, headers: headers, onEvent: onEvent)
					} catch {
						c.resume(throwing: error)
						return
					}
					c.resume(returning: ws)
					ws.readLoop()
				}
				t.name = "tinyvex-ws"
				t.start()
			}
		} catch let e as TransportError {
			throw e
		} catch {
			throw TransportError("\(error)")
		}
	}
}

final class POSIXWebSocket: WebSocketConnection, @unchecked Sendable {
	/// Bytes read from the socket at a time.
	static let readSize = 64 * 1024

	private let fd: Int32
	private let onEvent: @Sendable (WebSocketEvent) -> Void
	/// Serializes writes and the final close(2); `fdClosed` is only
	/// touched on it.
	private let writes = DispatchQueue(label: "tinyvex-ws-write")
	private var fdClosed = false
	private let lock = NSLock()
	/// Guarded by `lock`: a close frame went out, no more sends.
	private var closing = false
	/// Owned by the reader thread.
	private var parser = WebSocketParser()

	private init(fd: Int32, onEvent: @escaping @Sendable (WebSocketEvent) -> Void) {
		self.fd = fd
		self.onEvent = onEvent
	}

	static func errno(_ what: String) -> TransportError {
		TransportError("\(what): \(String(cString: strerror(Glibc.errno)))")
	}

	/// Connects, upgrades, and returns the open connection (not yet
	/// reading).
	static func open(host: String, port: Int, path: String, hostHeader: String, subprotocol: String,
	    headers: [String: String], onEvent: @escaping @Sendable (WebSocketEvent) -> Void) throws(TransportError) -> POSIXWebSocket {
		let fd = try dial(host: host, port: port)
		let ws = POSIXWebSocket(fd: fd, onEvent: onEvent)
		do {
			try ws.upgrade(hostHeader: hostHeader, path: path, subprotocol: subprotocol, headers: headers)
		} catch {
			Glibc.close(fd)
			throw error
		}
		return ws
	}

	private static func dial(host: String, port: Int) throws(TransportError) -> Int32 {
		var hints = addrinfo()
		hints.ai_family = AF_UNSPEC
		hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
		var res: UnsafeMutablePointer<addrinfo>?
		let rc = getaddrinfo(host, String(port), &hints, &res)
		guard rc == 0, let first = res else {
			throw TransportError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
		}
		defer {
			freeaddrinfo(first)
		}
		var last = TransportError("no address for \(host)")
		var ai: UnsafeMutablePointer<addrinfo>? = first
		while let a = ai {
			ai = a.pointee.ai_next
			let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue),
			    a.pointee.ai_protocol)
			if fd < 0 {
				last = errno("socket")
				continue
			}
			let flags = fcntl(fd, F_GETFL)
			_ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
			if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) != 0 && Glibc.errno != EINPROGRESS {
				last = errno("connect to \(host):\(port)")
				Glibc.close(fd)
				continue
			}
			var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
			if poll(&p, 1, POSIXWebSocketTransport.connectTimeout) != 1 {
				last = TransportError("connect to \(host):\(port): timed out")
				Glibc.close(fd)
				continue
			}
			var err: Int32 = 0
			var len = socklen_t(MemoryLayout<Int32>.size)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
			if err != 0 {
				last = TransportError("connect to \(host):\(port): \(String(cString: strerror(err)))")
				Glibc.close(fd)
				continue
			}
			_ = fcntl(fd, F_SETFL, flags)
			var one: Int32 = 1
			setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
			return fd
		}
		throw last
	}

	private func upgrade(hostHeader: String, path: String, subprotocol: String,
	    headers: [String: String]) throws(TransportError) {
		let key = WebSocketHandshake.randomKey()
		let req = WebSocketHandshake.request(host: hostHeader, path: path, key: key,
		    subprotocol: subprotocol, headers: headers)
		guard writeAll(Array(req.utf8)) else {
			throw Self.errno("sending the upgrade")
		}
		var data: [UInt8] = []
		var chunk = [UInt8](repeating: 0, count: 4096)
		while true {
			if let end = headEnd(data) {
				let head = String(decoding: data[0..<end], as: UTF8.self)
				if let e = WebSocketHandshake.check(head: head, key: key, subprotocol: subprotocol) {
					throw e
				}
				parser.feed(data[(end + 4)...])
				return
			}
			guard data.count <= WebSocketHandshake.maxHead else {
				throw TransportError("upgrade answer over \(WebSocketHandshake.maxHead) bytes")
			}
			var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
			guard poll(&p, 1, POSIXWebSocketTransport.connectTimeout) == 1 else {
				throw TransportError("no upgrade answer")
			}
			let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
			if n < 0, Glibc.errno == EINTR {
				continue
			}
			guard n > 0 else {
				throw TransportError("connection closed during the upgrade")
			}
			data += chunk[0..<n]
		}
	}

	private func headEnd(_ d: [UInt8]) -> Int? {
		guard d.count >= 4 else {
			return nil
		}
		for i in 0...(d.count - 4) where d[i] == 13 && d[i + 1] == 10 && d[i + 2] == 13 && d[i + 3] == 10 {
			return i
		}
		return nil
	}

	/// Writes every byte (blocking); false on error.
	private func writeAll(_ bytes: [UInt8]) -> Bool {
		var off = 0
		while off < bytes.count {
			let n = bytes.withUnsafeBytes {
				Glibc.send(fd, $0.baseAddress.map { $0 + off }, bytes.count - off, Int32(MSG_NOSIGNAL))
			}
			if n < 0 {
				if Glibc.errno == EINTR {
					continue
				}
				return false
			}
			off += n
		}
		return true
	}

	private func enqueue(_ frame: [UInt8], thenShutdown: Bool = false) {
		writes.async { [self] in
			guard !fdClosed else {
				return
			}
			if !writeAll(frame) || thenShutdown {
				shutdown(fd, Int32(SHUT_RDWR))
			}
		}
	}

	func send(_ text: String) {
		lock.lock()
		defer {
			lock.unlock()
		}
		guard !closing else {
			return
		}
		enqueue(WebSocketFrame.encode(.text, Array(text.utf8), mask: WebSocketFrame.randomMask()))
	}

	func close(code: UInt16) {
		sendClose(code)
	}

	private func sendClose(_ code: UInt16) {
		lock.lock()
		defer {
			lock.unlock()
		}
		guard !closing else {
			return
		}
		closing = true
		enqueue(WebSocketFrame.encode(.close, WebSocketFrame.closePayload(code),
		    mask: WebSocketFrame.randomMask()), thenShutdown: true)
	}

	/// Runs on the connection's thread until the socket is done, then
	/// reports `.closed` once.
	func readLoop() {
		var buf = [UInt8](repeating: 0, count: Self.readSize)
		var code: Int?
		var reason = "connection closed without a close frame"
		read: while true {
			let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
			if n < 0 {
				if Glibc.errno == EINTR {
					continue
				}
				reason = Self.errno("recv").description
				break
			}
			if n == 0 {
				lock.lock()
				if closing {
					reason = "closed by the client"
				}
				lock.unlock()
				break
			}
			parser.feed(buf[0..<n])
			do {
				while let m = try parser.next() {
					switch m {
					case .text(let s):
						onEvent(.text(s))
					case .ping(let payload):
						onEvent(.alive)
						lock.lock()
						if !closing {
							enqueue(WebSocketFrame.encode(.pong, payload, mask: WebSocketFrame.randomMask()))
						}
						lock.unlock()
					case .pong:
						onEvent(.alive)
					case .close(let c, let r):
						code = c
						reason = "server closed (\(c.map(String.init) ?? "no code"))" + (r.isEmpty ? "" : ": \(r)")
						sendClose(UInt16(clamping: c ?? 1000))
						break read
					}
				}
			} catch {
				reason = "protocol error from the server: \(error.why)"
				sendClose(error.code)
				break
			}
		}
		shutdown(fd, Int32(SHUT_RDWR))
		writes.async { [self] in
			fdClosed = true
			Glibc.close(fd)
		}
		onEvent(.closed(code: code, reason: reason))
	}
}
#endif
