// SHA-1 (FIPS 180-4), for one thing only: checking the server's
// Sec-WebSocket-Accept (RFC 6455 §4.2.2).  Not for anything secret.

enum SHA1 {
	static func hash(_ message: [UInt8]) -> [UInt8] {
		var h: (UInt32, UInt32, UInt32, UInt32, UInt32) =
		    (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
		var m = message
		let bits = UInt64(message.count) &* 8
		m.append(0x80)
		while m.count % 64 != 56 {
			m.append(0)
		}
		for i in (0..<8).reversed() {
			m.append(UInt8(truncatingIfNeeded: bits >> (UInt64(i) * 8)))
		}
		var w = [UInt32](repeating: 0, count: 80)
		var block = 0
		while block < m.count {
			for i in 0..<16 {
				let j = block + i * 4
				w[i] = UInt32(m[j]) << 24 | UInt32(m[j + 1]) << 16 |
				    UInt32(m[j + 2]) << 8 | UInt32(m[j + 3])
			}
			for i in 16..<80 {
				let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
				w[i] = x << 1 | x >> 31
			}
			var (a, b, c, d, e) = h
			for i in 0..<80 {
				let f: UInt32
				let k: UInt32
				switch i {
				case 0..<20:
					f = (b & c) | (~b & d)
					k = 0x5A827999
				case 20..<40:
					f = b ^ c ^ d
					k = 0x6ED9EBA1
				case 40..<60:
					f = (b & c) | (b & d) | (c & d)
					k = 0x8F1BBCDC
				default:
					f = b ^ c ^ d
					k = 0xCA62C1D6
				}
				let t = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
				e = d
				d = c
				c = b << 30 | b >> 2
				b = a
				a = t
			}
			h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
			block += 64
		}
		var out: [UInt8] = []
		for v in [h.0, h.1, h.2, h.3, h.4] {
			out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16),
			    UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
		}
		return out
	}
}
