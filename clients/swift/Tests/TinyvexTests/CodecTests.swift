// The WebSocket framing, the upgrade check and JSON text, without sockets:
// frames fed in every chunk size, malformed input refused with the right
// close code.

import Foundation
import Testing
@testable import Tinyvex

@Suite("codec")
struct CodecTests {
	func hex(_ b: [UInt8]) -> String {
		b.map { String(format: "%02x", $0) }.joined()
	}

	@Test func sha1Vectors() {
		#expect(hex(SHA1.hash([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
		#expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
		#expect(hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
		    == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
		#expect(hex(SHA1.hash([UInt8](repeating: 0x61, count: 1_000_000)))
		    == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
	}

	@Test func handshakeAccept() {
		// RFC 6455 section 1.3.
		#expect(WebSocketHandshake.accept(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
		let key = "dGhlIHNhbXBsZSBub25jZQ=="
		let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: tinyvex.v1"
		#expect(WebSocketHandshake.check(head: ok, key: key, subprotocol: "tinyvex.v1") == nil)
		#expect(WebSocketHandshake.check(head: ok.replacingOccurrences(of: "s3pP", with: "xxxx"),
		    key: key, subprotocol: "tinyvex.v1") != nil)
		#expect(WebSocketHandshake.check(head: ok.replacingOccurrences(of: "\r\nSec-WebSocket-Protocol: tinyvex.v1", with: ""),
		    key: key, subprotocol: "tinyvex.v1") != nil)
		#expect(WebSocketHandshake.check(head: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0", key: key,
		    subprotocol: "tinyvex.v1")?.description.contains("403") == true)
	}

	/// A server frame (unmasked).
	func frame(_ op: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
		var f: [UInt8] = [(fin ? 0x80 : 0) | op]
		if payload.count < 126 {
			f.append(UInt8(payload.count))
		} else if payload.count < 65536 {
			f += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
		} else {
			f.append(127)
			for i in (0..<8).reversed() {
				f.append(UInt8(truncatingIfNeeded: payload.count >> (i * 8)))
			}
		}
		return f + payload
	}

	@Test func parserInEveryChunkSize() throws {
		let big = String(repeating: "é", count: 40_000)	// 80 kB: 64-bit length
		var stream: [UInt8] = []
		stream += frame(1, Array("hello".utf8))
		stream += frame(9, [1, 2, 3])
		stream += frame(1, Array("frag".utf8), fin: false)
		stream += frame(10, [])
		stream += frame(0, Array("mented ".utf8), fin: false)
		stream += frame(0, Array("wörd".utf8))
		stream += frame(1, Array(String(repeating: "x", count: 300).utf8))
		stream += frame(1, Array(big.utf8))
		stream += frame(8, [0x03, 0xe9] + Array("bye".utf8))
		let want: [WebSocketMessage] = [.text("hello"), .ping([1, 2, 3]), .pong, .text("fragmented wörd"),
		    .text(String(repeating: "x", count: 300)), .text(big), .close(code: 1001, reason: "bye")]
		for size in [1, 2, 3, 7, 125, 4096, stream.count] {
			var p = WebSocketParser()
			var got: [WebSocketMessage] = []
			var i = 0
			while i < stream.count {
				p.feed(stream[i..<min(i + size, stream.count)])
				i += size
				while let m = try p.next() {
					got.append(m)
				}
			}
			#expect(got == want, "chunk size \(size)")
		}
	}

	@Test func parserFailsClosed() {
		let cases: [([UInt8], UInt16)] = [
			([0x81, 0x82, 1, 2, 3, 4, 0, 0], 1002),		// masked by the server
			([0xc1, 0x00], 1002),				// RSV1
			([0x83, 0x00], 1002),				// unknown opcode
			([0x82, 0x01, 0x00], 1003),			// binary
			([0x81, 0x02, 0xc3, 0x28], 1007),		// invalid UTF-8
			([0x09, 0x00], 1002),				// fragmented ping
			([0x89, 126, 0, 126] + [UInt8](repeating: 0, count: 126), 1002),	// long ping
			([0x80, 0x00], 1002),				// continuation without a message
			([0x01, 0x01, 0x61, 0x81, 0x01, 0x61], 1002),	// text inside a fragmented one
			([0x81, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 1009),	// huge
		]
		for (bytes, code) in cases {
			var p = WebSocketParser()
			p.feed(bytes)
			do {
				while try p.next() != nil {
				}
				Issue.record("accepted \(bytes.prefix(8))")
			} catch {
				#expect(error.code == code, "\(bytes.prefix(8))")
			}
		}
	}

	@Test func clientFramesAreMasked() {
		let mask: [UInt8] = [1, 2, 3, 4]
		let payload = Array(String(repeating: "z", count: 70_000).utf8)
		let f = WebSocketFrame.encode(.text, payload, mask: mask)
		#expect(f[0] == 0x81 && f[1] == 0x80 | 127)
		#expect(Array(f[10..<14]) == mask)
		let unmasked = f[14...].enumerated().map { $0.element ^ mask[$0.offset & 3] }
		#expect(unmasked == payload)
		#expect(WebSocketFrame.encode(.close, WebSocketFrame.closePayload(1000), mask: mask).count == 8)
	}

	@Test func jsonText() throws {
		let v = try JSONValue(parsing: #" {"b": [1, -2.5, 1e3, true, false, null], "a": "x\"\\\/\n\u00e9\ud83d\ude00", "c": {}} "#)
		#expect(v == ["a": "x\"\\/\né😀", "b": [1, -2.5, 1000, true, false, nil], "c": [:]])
		#expect(v.jsonText == #"{"a":"x\"\\/\né😀","b":[1,-2.5,1000,true,false,null],"c":{}}"#)
		#expect(try JSONValue(parsing: "1765100000123456").int64Value == 1765100000123456)
		#expect(JSONValue.number(1765100000123456).jsonText == "1765100000123456")
		for bad in ["", "01", "1.", "[1,]", "{\"a\":1,}", "\"\\ud800\"", "\"a", "tru", "{} {}", "\"\u{1}\"", "-", "[1 2]"] {
			#expect(throws: TinyvexError.self, "\(bad)") {
				_ = try JSONValue(parsing: bad)
			}
		}
		struct P: Codable, Equatable {
			var x: Int
			var y: [String]
		}
		let p = try JSONValue(encoding: P(x: 3, y: ["a"]))
		#expect(p == ["x": 3, "y": ["a"]])
		#expect(try p.decode(P.self) == P(x: 3, y: ["a"]))
		#expect(throws: TinyvexError.self) {
			_ = try JSONValue.string("no").decode(P.self)
		}
	}
}
