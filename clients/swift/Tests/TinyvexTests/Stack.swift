// The real daemons for the live tests: writerd and gatewayd from
// $TINYVEX_BUILD (default: the repository's build/), in a temporary state
// directory, the gateway on a free loopback port, as
// tests/integration/tvtest.py starts them.

import Foundation
import Glibc
@testable import Tinyvex

struct StackError: Error, CustomStringConvertible {
	let description: String
}

final class Stack: @unchecked Sendable {
	static let build: String = {
		if let b = ProcessInfo.processInfo.environment["TINYVEX_BUILD"], !b.isEmpty {
			return b
		}
		// clients/swift/Tests/TinyvexTests/Stack.swift -> repository root
		let here = URL(fileURLWithPath: #filePath)
		return here.deletingLastPathComponent().deletingLastPathComponent()
		    .deletingLastPathComponent().deletingLastPathComponent()
		    .deletingLastPathComponent().appendingPathComponent("build").path
	}()

	let dir: String
	private(set) var port: Int
	private let lock = NSLock()
	private var writer: Daemon?
	private var gateway: Daemon?
	private var extras: [Daemon] = []
	private var conf: String?

	init(conf: String? = nil, schema: String? = nil) throws {
		let tmpl = FileManager.default.temporaryDirectory.appendingPathComponent("tinyvex-swift-XXXXXX").path
		var buf = Array(tmpl.utf8CString)
		guard let p = mkdtemp(&buf) else {
			throw StackError(description: "mkdtemp failed")
		}
		dir = String(cString: p)
		port = try Stack.freePort()
		if let conf {
			let path = dir + "/tinyvex.conf"
			try conf.write(toFile: path, atomically: true, encoding: .utf8)
			self.conf = path
		}
		if let schema {
			let path = dir + "/schema.json"
			try schema.write(toFile: path, atomically: true, encoding: .utf8)
			writerArgs += ["-s", path]
		}
		if let c = self.conf {
			writerArgs += ["-f", c]
		}
		do {
			try startWriter()
			// Another program may take the port first: try another.
			for attempt in 0..<5 {
				do {
					try startGateway()
					break
				} catch let e as StackError where e.description.contains("in use") && attempt < 4 {
					port = try Stack.freePort()
				}
			}
		} catch {
			stop()
			throw error
		}
	}

	private var writerArgs: [String] = []

	/// Starts (or restarts) writerd.
	func startWriter() throws {
		try? FileManager.default.removeItem(atPath: dir + "/control.sock")
		let p = try spawn(Stack.build + "/writerd/writerd", ["-d", "-r", dir] + writerArgs, log: "writerd")
		lock.withLock { writer = p }
		guard wait(30, { FileManager.default.fileExists(atPath: self.dir + "/control.sock") }) else {
			throw StackError(description: "writerd did not start (\(dir))")
		}
	}

	func killWriter() {
		let p = lock.withLock { () -> Daemon? in
			let p = writer
			writer = nil
			return p
		}
		p?.stop(SIGKILL)
	}

	/// Starts (or restarts) gatewayd on this stack's port.
	func startGateway() throws {
		var args = ["-d", "-r", dir, "-l", "127.0.0.1:\(port)"]
		if let c = conf {
			args += ["-f", c]
		}
		let p = try spawn(Stack.build + "/gatewayd/gatewayd", args, log: "gatewayd")
		lock.withLock { gateway = p }
		guard wait(30, { p.exited || Stack.health(self.port)?.contains("\"writer\":true") == true }),
		    !p.exited else {
			throw StackError(description: "gatewayd did not start: \(logTail("gatewayd"))")
		}
	}

	/// Starts another gatewayd on the same database, on `port`.
	func startExtraGateway(port: Int) throws {
		var args = ["-d", "-r", dir, "-l", "127.0.0.1:\(port)"]
		if let c = conf {
			args += ["-f", c]
		}
		let p = try spawn(Stack.build + "/gatewayd/gatewayd", args, log: "gatewayd-\(port)")
		lock.withLock { extras.append(p) }
		guard wait(30, { Stack.health(port)?.contains("\"writer\":true") == true }) else {
			throw StackError(description: "gatewayd on \(port) did not start (\(dir))")
		}
	}

	func killGateway() {
		let p = lock.withLock { () -> Daemon? in
			let p = gateway
			gateway = nil
			return p
		}
		p?.stop(SIGKILL)
	}

	func signalGateway(_ sig: Int32) {
		if let p = lock.withLock({ gateway }) {
			kill(p.pid, sig)
		}
	}

	var url: URL {
		URL(string: "ws://127.0.0.1:\(port)/sync") ?? URL(fileURLWithPath: "/")
	}

	func client(_ options: TinyvexOptions = TinyvexOptions()) -> TinyvexClient {
		TinyvexClient(url: url, options: options)
	}

	func stop() {
		let procs = lock.withLock { [gateway].compactMap { $0 } + extras + [writer].compactMap { $0 } }
		for p in procs {
			p.stop(SIGTERM)
		}
		if ProcessInfo.processInfo.environment["TINYVEX_KEEP"] == nil {
			try? FileManager.default.removeItem(atPath: dir)
		}
	}

	/// Runs tinyvexctl -j; its standard output.
	func ctl(_ args: String...) throws -> String {
		let p = Process()
		p.executableURL = URL(fileURLWithPath: Stack.build + "/ctl/tinyvexctl")
		p.arguments = ["-j", "-r", dir] + args
		let out = Pipe()
		p.standardOutput = out
		try p.run()
		let data = out.fileHandleForReading.readDataToEndOfFile()
		p.waitUntilExit()
		return String(decoding: data, as: UTF8.self)
	}

	/// The end of a daemon's log, for an error message.
	func logTail(_ name: String) -> String {
		let text = (try? String(contentsOfFile: dir + "/\(name).log", encoding: .utf8)) ?? ""
		return String(text.suffix(600))
	}

	private func spawn(_ path: String, _ args: [String], log: String) throws -> Daemon {
		guard FileManager.default.isExecutableFile(atPath: path) else {
			throw StackError(description: "\(path) is missing: build the daemons (TINYVEX_BUILD=\(Stack.build))")
		}
		return try Daemon(path: path, args: args, log: dir + "/\(log).log")
	}

	private func wait(_ seconds: Double, _ pred: () -> Bool) -> Bool {
		let end = Date().addingTimeInterval(seconds)
		while Date() < end {
			if pred() {
				return true
			}
			usleep(20_000)
		}
		return pred()
	}

	/// With TINYVEX_SWIFT_PIDS set, every daemon's pid is appended to
	/// that file, so that the runner can stop any a crashed test left.
	static func record(_ pid: pid_t) {
		guard let path = ProcessInfo.processInfo.environment["TINYVEX_SWIFT_PIDS"],
		    let fh = FileHandle(forWritingAtPath: path) else {
			return
		}
		fh.seekToEndOfFile()
		fh.write(Data("\(pid)\n".utf8))
		fh.closeFile()
	}

	/// A port that nothing listens on, below the ephemeral range: a
	/// client reconnecting to a gateway that is down could otherwise be
	/// given the gateway's own port as its local one (a TCP
	/// self-connect) and hold it.
	static func freePort() throws -> Int {
		for _ in 0..<200 {
			let port = Int.random(in: 20_000..<32_000)
			let fresh = portsLock.withLock { handedOut.insert(port).inserted }
			if fresh, canBind(port) {
				return port
			}
		}
		throw StackError(description: "no free port")
	}

	/// Ports this process has handed out, never handed out twice.
	nonisolated(unsafe) private static var handedOut: Set<Int> = []
	private static let portsLock = NSLock()

	static func canBind(_ port: Int) -> Bool {
		let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
		guard fd >= 0 else {
			return false
		}
		defer { close(fd) }
		var a = sockaddr_in()
		a.sin_family = sa_family_t(AF_INET)
		a.sin_port = UInt16(port).bigEndian
		a.sin_addr.s_addr = inet_addr("127.0.0.1")
		return withUnsafePointer(to: &a) { ptr in
			ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
				bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
			}
		}
	}

	/// GET /healthz; the body, or nil.
	static func health(_ port: Int) -> String? {
		let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
		guard fd >= 0 else {
			return nil
		}
		defer { close(fd) }
		var a = sockaddr_in()
		a.sin_family = sa_family_t(AF_INET)
		a.sin_port = UInt16(port).bigEndian
		a.sin_addr.s_addr = inet_addr("127.0.0.1")
		let ok = withUnsafePointer(to: &a) { ptr in
			ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
				connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
			}
		}
		guard ok else {
			return nil
		}
		var tv = timeval(tv_sec: 2, tv_usec: 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
		let req = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
		guard send(fd, req, req.count, Int32(MSG_NOSIGNAL)) == req.count else {
			return nil
		}
		var out: [UInt8] = []
		var b = [UInt8](repeating: 0, count: 4096)
		while true {
			let n = recv(fd, &b, b.count, 0)
			if n <= 0 {
				break
			}
			out += b[0..<n]
		}
		let s = String(decoding: out, as: UTF8.self)
		guard s.hasPrefix("HTTP/1.1 200") else {
			return nil
		}
		return s.components(separatedBy: "\r\n\r\n").last?.replacingOccurrences(of: " ", with: "")
	}
}

/// Collects what a stream yields, for tests to wait on.
final class Collector<T: Sendable>: @unchecked Sendable {
	private let lock = NSLock()
	private var items: [T] = []
	private var task: Task<Void, Never>?

	init<S: AsyncSequence & Sendable>(_ seq: S) where S.Element == T {
		task = Task { [self] in
			do {
				for try await x in seq {
					lock.withLock { items.append(x) }
				}
			} catch {
			}
		}
	}

	var all: [T] {
		lock.withLock { items }
	}

	var last: T? {
		lock.withLock { items.last }
	}

	/// Waits until `pred` holds for what was collected (true) or the
	/// time is up (false).
	func wait(_ seconds: Double = 20, _ pred: ([T]) -> Bool) async -> Bool {
		let end = Date().addingTimeInterval(seconds)
		while Date() < end {
			if pred(all) {
				return true
			}
			try? await Task.sleep(nanoseconds: 20_000_000)
		}
		return pred(all)
	}

	func stop() {
		task?.cancel()
	}
}

/// Polls until `pred` holds or the time is up.
func eventually(_ seconds: Double = 20, _ pred: () async -> Bool) async -> Bool {
	let end = Date().addingTimeInterval(seconds)
	while Date() < end {
		if await pred() {
			return true
		}
		try? await Task.sleep(nanoseconds: 20_000_000)
	}
	return await pred()
}

/// A daemon started with posix_spawn, with every signal unblocked and at
/// its default (a thread of Foundation's Process would pass on its
/// blocked mask, and the daemon would ignore SIGTERM).
final class Daemon: @unchecked Sendable {
	let pid: pid_t
	private let lock = NSLock()
	private var reaped = false

	init(path: String, args: [String], log: String) throws {
		var fa = posix_spawn_file_actions_t()
		posix_spawn_file_actions_init(&fa)
		defer { posix_spawn_file_actions_destroy(&fa) }
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
		posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
		var attr = posix_spawnattr_t()
		posix_spawnattr_init(&attr)
		defer { posix_spawnattr_destroy(&attr) }
		var none = sigset_t()
		sigemptyset(&none)
		var all = sigset_t()
		sigfillset(&all)
		posix_spawnattr_setsigmask(&attr, &none)
		posix_spawnattr_setsigdefault(&attr, &all)
		posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
		let argv = ([path] + args).map { strdup($0) } + [nil]
		defer { argv.forEach { free($0) } }
		var p: pid_t = 0
		let rc = posix_spawn(&p, path, &fa, &attr, argv, environ)
		guard rc == 0 else {
			throw StackError(description: "posix_spawn \(path): \(String(cString: strerror(rc)))")
		}
		pid = p
		Stack.record(pid)
	}

	/// Whether it has exited (reaping it).
	var exited: Bool {
		lock.withLock {
			if !reaped {
				var st: Int32 = 0
				reaped = waitpid(pid, &st, WNOHANG) == pid
			}
			return reaped
		}
	}

	/// Sends `sig`, waits up to 10 s for the exit (then SIGKILL).
	func stop(_ sig: Int32) {
		if exited {
			return
		}
		kill(pid, sig)
		var st: Int32 = 0
		for _ in 0..<500 {
			if waitpid(pid, &st, WNOHANG) == pid {
				lock.withLock { reaped = true }
				return
			}
			usleep(20_000)
		}
		kill(pid, SIGKILL)
		waitpid(pid, &st, 0)
		lock.withLock { reaped = true }
	}
}
