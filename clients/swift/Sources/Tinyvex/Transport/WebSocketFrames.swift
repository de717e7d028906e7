// RFC 6455 framing for a client, without sockets: the handshake's key and
// accept check, encoding masked frames, and a parser fed bytes in any
// chunk size that yields whole messages (fragments joined, control frames
// between them), fail-closed with the close code to send.

import Foundation

enum WebSocketHandshake {
	static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	/// Longest response head accepted.
	static let maxHead = 16 * 1024

	static func randomKey() -> String {
		var g = SystemRandomNumberGenerator()
		let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
		return Data(bytes).base64EncodedString()
	}

	static func accept(for key: String) -> String {
		Data(SHA1.hash(Array((key + guid).utf8))).base64EncodedString()
	}

	static func request(host: String, path: String, key: String, subprotocol: String,
	    headers: [String: String]) -> String {
		var r = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\n" +
		    "Connection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\n" +
		    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: \(subprotocol)\r\n"
		for (k, v) in headers.sorted(by: { $0.key < $1.key }) {
			r += "\(k): \(v)\r\n"
		}
		return r + "\r\n"
	}

	/// Checks a response head (without the blank line): 101, the
	/// upgrade headers, the accept value for `key`, the subprotocol.
	static func check(head: String, key: String, subprotocol: String) -> TransportError? {
		let lines = head.components(separatedBy: "\r\n")
		guard let status = lines.first else {
			return TransportError("empty upgrade answer")
		}
		let parts = status.split(separator: " ", maxSplits: 2)
		guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else {
			return TransportError("bad status line \(status.prefix(80))")
		}
		guard parts[1] == "101" else {
			return TransportError("upgrade refused: \(status.prefix(80))")
		}
		var fields: [String: String] = [:]
		for l in lines.dropFirst() {
			guard let colon = l.firstIndex(of: ":") else {
				return TransportError("bad header line")
			}
			let name = l[..<colon].lowercased()
			let value = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
			fields[name] = value
		}
		guard fields["upgrade"]?.lowercased() == "websocket",
		    fields["connection"]?.lowercased().contains("upgrade") == true else {
			return TransportError("upgrade headers missing")
		}
		guard fields["sec-websocket-accept"] == accept(for: key) else {
			return TransportError("Sec-WebSocket-Accept does not match the key")
		}
		guard fields["sec-websocket-protocol"] == subprotocol else {
			return TransportError("subprotocol \(subprotocol) not accepted")
		}
		return nil
	}
}

enum WebSocketOpcode: UInt8 {
	case continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10
}

enum WebSocketFrame {
	/// One final frame, masked with `mask` (a client always masks).
	static func encode(_ op: WebSocketOpcode, _ payload: [UInt8], mask: [UInt8]) -> [UInt8] {
		var f: [UInt8] = [0x80 | op.rawValue]
		let n = payload.count
		if n < 126 {
			f.append(0x80 | UInt8(n))
		} else if n < 65536 {
			f.append(0x80 | 126)
			f += [UInt8(n >> 8), UInt8(n & 0xff)]
		} else {
			f.append(0x80 | 127)
			for i in (0..<8).reversed() {
				f.append(UInt8(truncatingIfNeeded: UInt64(n) >> (UInt64(i) * 8)))
			}
		}
		f += mask
		f.reserveCapacity(f.count + n)
		for (i, b) in payload.enumerated() {
			f.append(b ^ mask[i & 3])
		}
		return f
	}

	static func randomMask() -> [UInt8] {
		var g = SystemRandomNumberGenerator()
		let v = UInt32.random(in: 0...UInt32.max, using: &g)
		return [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16),
		    UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
	}

	static func closePayload(_ code: UInt16) -> [UInt8] {
		[UInt8(code >> 8), UInt8(code & 0xff)]
	}
}

/// A whole message or control frame from the server.
enum WebSocketMessage: Equatable {
	case text(String)
	case ping([UInt8])
	case pong
	case close(code: Int?, reason: String)
}

/// Fail-closed reading: the close code to answer with and why.
struct WebSocketProtocolError: Error, Equatable {
	let code: UInt16
	let why: String
}

struct WebSocketParser {
	/// Largest message accepted (the server's own limit is far lower).
	static let maxMessage = 64 * 1024 * 1024

	private var buf: [UInt8] = []
	private var off = 0
	private var fragments: [UInt8] = []
	private var inMessage = false

	mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
		if off > 0, off >= buf.count / 2 {
			buf.removeFirst(off)
			off = 0
		}
		buf.append(contentsOf: bytes)
	}

	/// The next complete message, nil when more bytes are needed.
	mutating func next() throws(WebSocketProtocolError) -> WebSocketMessage? {
		while true {
			let avail = buf.count - off
			guard avail >= 2 else {
				return nil
			}
			let b0 = buf[off], b1 = buf[off + 1]
			guard b0 & 0x70 == 0 else {
				throw WebSocketProtocolError(code: 1002, why: "reserved bits set")
			}
			guard b1 & 0x80 == 0 else {
				throw WebSocketProtocolError(code: 1002, why: "masked frame from the server")
			}
			let fin = b0 & 0x80 != 0
			guard let op = WebSocketOpcode(rawValue: b0 & 0x0f) else {
				throw WebSocketProtocolError(code: 1002, why: "unknown opcode \(b0 & 0x0f)")
			}
			var len = UInt64(b1 & 0x7f)
			var hdr = 2
			if len == 126 {
				guard avail >= 4 else {
					return nil
				}
				len = UInt64(buf[off + 2]) << 8 | UInt64(buf[off + 3])
				hdr = 4
			} else if len == 127 {
				guard avail >= 10 else {
					return nil
				}
				len = 0
				for i in 0..<8 {
					len = len << 8 | UInt64(buf[off + 2 + i])
				}
				hdr = 10
			}
			let isControl = op.rawValue >= 8
			if isControl {
				guard fin, len <= 125 else {
					throw WebSocketProtocolError(code: 1002, why: "bad control frame")
				}
			}
			guard len <= UInt64(Self.maxMessage) - UInt64(fragments.count) else {
				throw WebSocketProtocolError(code: 1009, why: "message over \(Self.maxMessage) bytes")
			}
			let n = Int(len)
			guard avail >= hdr + n else {
				return nil
			}
			let start = off + hdr
			off = start + n
			switch op {
			case .ping:
				return .ping(Array(buf[start..<start + n]))
			case .pong:
				return .pong
			case .close:
				if n == 0 {
					return .close(code: nil, reason: "")
				}
				guard n >= 2 else {
					throw WebSocketProtocolError(code: 1002, why: "close frame of one byte")
				}
				let code = Int(buf[start]) << 8 | Int(buf[start + 1])
				let reason = String(decoding: buf[start + 2..<start + n], as: UTF8.self)
				return .close(code: code, reason: reason)
			case .binary:
				throw WebSocketProtocolError(code: 1003, why: "binary frame")
			case .text:
				guard !inMessage else {
					throw WebSocketProtocolError(code: 1002, why: "new message inside a fragmented one")
				}
				if fin {
					return try text(buf[start..<start + n])
				}
				inMessage = true
				fragments = Array(buf[start..<start + n])
			case .continuation:
				guard inMessage else {
					throw WebSocketProtocolError(code: 1002, why: "continuation without a message")
				}
				fragments += buf[start..<start + n]
				if fin {
					inMessage = false
					let m = fragments
					fragments = []
					return try text(m[...])
				}
			}
		}
	}

	private func text(_ bytes: ArraySlice<UInt8>) throws(WebSocketProtocolError) -> WebSocketMessage {
		guard let s = String(validating: bytes, as: UTF8.self) else {
			throw WebSocketProtocolError(code: 1007, why: "invalid UTF-8")
		}
		return .text(s)
	}
}
