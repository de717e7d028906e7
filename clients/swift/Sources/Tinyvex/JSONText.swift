// JSON text to JSONValue and back.  The parser is strict RFC 8259
// (fail-closed: no trailing bytes, no lone surrogates, no invalid UTF-8,
// bounded depth) and knows nothing of the protocol; the writer prints
// integral numbers as integers and sorts object members.

import Foundation

enum JSONParser {
	/// Deepest nesting accepted; the server bounds documents far below.
	static let maxDepth = 512

	static func parse(_ text: String) throws(TinyvexError) -> JSONValue {
		var text = text
		return try text.withUTF8 { (buf) -> Result<JSONValue, TinyvexError> in
			do throws(TinyvexError) {
				return .success(try parse(buf))
			} catch {
				return .failure(error)
			}
		}.get()
	}

	static func parse(_ data: Data) throws(TinyvexError) -> JSONValue {
		try data.withUnsafeBytes { (raw) -> Result<JSONValue, TinyvexError> in
			do throws(TinyvexError) {
				return .success(try parse(raw.bindMemory(to: UInt8.self)))
			} catch {
				return .failure(error)
			}
		}.get()
	}

	static func parse(_ buf: UnsafeBufferPointer<UInt8>) throws(TinyvexError) -> JSONValue {
		var p = Parser(buf: buf)
		p.skipSpace()
		let v = try p.value(depth: 0)
		p.skipSpace()
		if p.pos != buf.count {
			throw p.fail("trailing bytes")
		}
		return v
	}

	private struct Parser {
		let buf: UnsafeBufferPointer<UInt8>
		var pos = 0

		func fail(_ why: String) -> TinyvexError {
			.invalidResponse("JSON: \(why) at byte \(pos)")
		}

		mutating func skipSpace() {
			while pos < buf.count {
				switch buf[pos] {
				case 0x20, 0x09, 0x0a, 0x0d: pos += 1
				default: return
				}
			}
		}

		mutating func expect(_ word: StaticString) throws(TinyvexError) {
			let n = word.utf8CodeUnitCount
			guard pos + n <= buf.count else {
				throw fail("truncated literal")
			}
			let w = word.utf8Start
			for i in 0..<n where buf[pos + i] != w[i] {
				throw fail("bad literal")
			}
			pos += n
		}

		mutating func value(depth: Int) throws(TinyvexError) -> JSONValue {
			guard depth < JSONParser.maxDepth else {
				throw fail("nested too deep")
			}
			guard pos < buf.count else {
				throw fail("unexpected end")
			}
			switch buf[pos] {
			case UInt8(ascii: "{"):
				pos += 1
				var o: [String: JSONValue] = [:]
				skipSpace()
				if pos < buf.count, buf[pos] == UInt8(ascii: "}") {
					pos += 1
					return .object(o)
				}
				while true {
					skipSpace()
					guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else {
						throw fail("expected a member name")
					}
					let k = try string()
					skipSpace()
					guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else {
						throw fail("expected ':'")
					}
					pos += 1
					skipSpace()
					o[k] = try value(depth: depth + 1)
					skipSpace()
					guard pos < buf.count else {
						throw fail("unexpected end")
					}
					if buf[pos] == UInt8(ascii: ",") {
						pos += 1
						continue
					}
					if buf[pos] == UInt8(ascii: "}") {
						pos += 1
						return .object(o)
					}
					throw fail("expected ',' or '}'")
				}
			case UInt8(ascii: "["):
				pos += 1
				var a: [JSONValue] = []
				skipSpace()
				if pos < buf.count, buf[pos] == UInt8(ascii: "]") {
					pos += 1
					return .array(a)
				}
				while true {
					skipSpace()
					a.append(try value(depth: depth + 1))
					skipSpace()
					guard pos < buf.count else {
						throw fail("unexpected end")
					}
					if buf[pos] == UInt8(ascii: ",") {
						pos += 1
						continue
					}
					if buf[pos] == UInt8(ascii: "]") {
						pos += 1
						return .array(a)
					}
					throw fail("expected ',' or ']'")
				}
			case UInt8(ascii: "\""):
				return .string(try string())
			case UInt8(ascii: "t"):
				try expect("true")
				return .bool(true)
			case UInt8(ascii: "f"):
				try expect("false")
				return .bool(false)
			case UInt8(ascii: "n"):
				try expect("null")
				return .null
			default:
				return .number(try number())
			}
		}

		mutating func digits() -> Int {
			let start = pos
			while pos < buf.count, buf[pos] >= 0x30, buf[pos] <= 0x39 {
				pos += 1
			}
			return pos - start
		}

		mutating func number() throws(TinyvexError) -> Double {
			let start = pos
			var integral = true
			if pos < buf.count, buf[pos] == UInt8(ascii: "-") {
				pos += 1
			}
			guard pos < buf.count else {
				throw fail("bad number")
			}
			if buf[pos] == UInt8(ascii: "0") {
				pos += 1
			} else if digits() == 0 {
				throw fail("bad value")
			}
			if pos < buf.count, buf[pos] == UInt8(ascii: ".") {
				integral = false
				pos += 1
				if digits() == 0 {
					throw fail("bad fraction")
				}
			}
			if pos < buf.count, buf[pos] | 0x20 == UInt8(ascii: "e") {
				integral = false
				pos += 1
				if pos < buf.count, buf[pos] == UInt8(ascii: "+") || buf[pos] == UInt8(ascii: "-") {
					pos += 1
				}
				if digits() == 0 {
					throw fail("bad exponent")
				}
			}
			let len = pos - start
			if integral, len <= 15 {
				var n: Int64 = 0
				var neg = false
				for i in start..<pos {
					if buf[i] == UInt8(ascii: "-") {
						neg = true
					} else {
						n = n * 10 + Int64(buf[i] - 0x30)
					}
				}
				return Double(neg ? -n : n)
			}
			let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
			guard let d = Double(s), d.isFinite else {
				throw fail("number out of range")
			}
			return d
		}

		mutating func hex4() throws(TinyvexError) -> UInt32 {
			guard pos + 4 <= buf.count else {
				throw fail("truncated escape")
			}
			var v: UInt32 = 0
			for _ in 0..<4 {
				let c = buf[pos]
				pos += 1
				v <<= 4
				switch c {
				case 0x30...0x39: v |= UInt32(c - 0x30)
				case 0x41...0x46: v |= UInt32(c - 0x41 + 10)
				case 0x61...0x66: v |= UInt32(c - 0x61 + 10)
				default: throw fail("bad \\u escape")
				}
			}
			return v
		}

		/// A string; pos is at its opening quote.
		mutating func string() throws(TinyvexError) -> String {
			pos += 1
			let start = pos
			// Fast path: no escapes.
			while pos < buf.count {
				let c = buf[pos]
				if c == UInt8(ascii: "\"") {
					let s = UnsafeBufferPointer(rebasing: buf[start..<pos])
					pos += 1
					guard let str = String(validating: s, as: UTF8.self) else {
						throw fail("invalid UTF-8")
					}
					return str
				}
				if c == UInt8(ascii: "\\") || c < 0x20 {
					break
				}
				pos += 1
			}
			var bytes = Array(UnsafeBufferPointer(rebasing: buf[start..<pos]))
			while pos < buf.count {
				let c = buf[pos]
				pos += 1
				if c == UInt8(ascii: "\"") {
					guard let str = String(validating: bytes, as: UTF8.self) else {
						throw fail("invalid UTF-8")
					}
					return str
				}
				if c < 0x20 {
					throw fail("control character in string")
				}
				if c != UInt8(ascii: "\\") {
					bytes.append(c)
					continue
				}
				guard pos < buf.count else {
					break
				}
				let e = buf[pos]
				pos += 1
				switch e {
				case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
					bytes.append(e)
				case UInt8(ascii: "b"): bytes.append(0x08)
				case UInt8(ascii: "f"): bytes.append(0x0c)
				case UInt8(ascii: "n"): bytes.append(0x0a)
				case UInt8(ascii: "r"): bytes.append(0x0d)
				case UInt8(ascii: "t"): bytes.append(0x09)
				case UInt8(ascii: "u"):
					var u = try hex4()
					if u >= 0xd800, u < 0xdc00 {
						guard pos + 2 <= buf.count, buf[pos] == UInt8(ascii: "\\"),
						    buf[pos + 1] == UInt8(ascii: "u") else {
							throw fail("lone surrogate")
						}
						pos += 2
						let lo = try hex4()
						guard lo >= 0xdc00, lo < 0xe000 else {
							throw fail("lone surrogate")
						}
						u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)
					} else if u >= 0xdc00, u < 0xe000 {
						throw fail("lone surrogate")
					}
					guard let scalar = Unicode.Scalar(u) else {
						throw fail("bad \\u escape")
					}
					bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
				default:
					throw fail("bad escape")
				}
			}
			throw fail("unterminated string")
		}
	}
}

enum JSONWriter {
	static func text(_ v: JSONValue) -> String {
		var out: [UInt8] = []
		write(v, into: &out)
		return String(decoding: out, as: UTF8.self)
	}

	static func write(_ v: JSONValue, into out: inout [UInt8]) {
		switch v {
		case .null: out.append(contentsOf: "null".utf8)
		case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
		case .number(let d): writeNumber(d, into: &out)
		case .string(let s): writeString(s, into: &out)
		case .array(let a):
			out.append(UInt8(ascii: "["))
			var first = true
			for e in a {
				if !first {
					out.append(UInt8(ascii: ","))
				}
				first = false
				write(e, into: &out)
			}
			out.append(UInt8(ascii: "]"))
		case .object(let o):
			out.append(UInt8(ascii: "{"))
			var first = true
			for (k, e) in o.sorted(by: { $0.key < $1.key }) {
				if !first {
					out.append(UInt8(ascii: ","))
				}
				first = false
				writeString(k, into: &out)
				out.append(UInt8(ascii: ":"))
				write(e, into: &out)
			}
			out.append(UInt8(ascii: "}"))
		}
	}

	static func writeNumber(_ d: Double, into out: inout [UInt8]) {
		if !d.isFinite {
			out.append(contentsOf: "null".utf8)
		} else if d.rounded() == d, abs(d) <= 9_007_199_254_740_992 {
			out.append(contentsOf: String(Int64(d)).utf8)
		} else {
			out.append(contentsOf: "\(d)".utf8)
		}
	}

	static let hex = Array("0123456789abcdef".utf8)

	static func writeString(_ s: String, into out: inout [UInt8]) {
		out.append(UInt8(ascii: "\""))
		for c in s.utf8 {
			switch c {
			case UInt8(ascii: "\""):
				out.append(UInt8(ascii: "\\"))
				out.append(c)
			case UInt8(ascii: "\\"):
				out.append(c)
				out.append(c)
			case 0x0a:
				out.append(contentsOf: "\\n".utf8)
			case 0x0d:
				out.append(contentsOf: "\\r".utf8)
			case 0x09:
				out.append(contentsOf: "\\t".utf8)
			case 0..<0x20:
				out.append(contentsOf: "\\u00".utf8)
				out.append(hex[Int(c >> 4)])
				out.append(hex[Int(c & 15)])
			default:
				out.append(c)
			}
		}
		out.append(UInt8(ascii: "\""))
	}
}
