"""Out of descriptors: writerd (writer.sock, control.sock) and gatewayd
(the WebSocket port) started with a low limit of open files, and more
clients connecting than they have descriptors for.  While the clients
stay, each daemon pauses accepting instead of spinning on accept(2):
over WINDOW seconds it uses less than MAX_CPU of a core and writes at
most MAX_LOG_LINES log lines.  Once the clients leave it serves new ones.

The CPU time is utime + stime of /proc/PID/stat."""

import os
import socket
import time

from tvtest import Client, Stack, check, ctl, finish, run, wait_for

WRITER_NOFILE = 24	# writerd's limit of open files
GATEWAY_NOFILE = 40	# gatewayd's
CLIENTS = 60		# connections held open, more than either limit
WINDOW = 2.0		# seconds measured
MAX_CPU = 0.10		# of one core, over WINDOW
MAX_LOG_LINES = 5	# lines logged over WINDOW
SETTLE = 0.5		# seconds for the daemon to reach its limit first


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: field 3 (state) is fields[0]; utime is
    # field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_text(path):
    with open(path, "rb") as f:
        return f.read()


def crowd(family, addr, n):
    """Up to n connections to addr, held open (no byte sent)."""
    socks = []
    for _ in range(n):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(addr)
        except OSError:
            s.close()
            break
        socks.append(s)
    return socks


def measure(what, proc, logpath, socks, since):
    """Check the CPU use and the log lines of proc over WINDOW seconds
    while socks stay open; then close them.  since: the length of the
    log before the clients came."""
    time.sleep(SETTLE)
    log0 = log_text(logpath).count(b"\n")
    cpu0 = cpu_seconds(proc.pid)
    t0 = time.monotonic()
    time.sleep(WINDOW)
    cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
    text = log_text(logpath)
    lines = text.count(b"\n") - log0
    print("%s: %d clients, %.1f %% of a core, %d log lines in %.1f s" % (
        what, len(socks), cpu * 100, lines, WINDOW), flush=True)
    check(len(socks) > 0 and b"Too many open files" in text[since:],
          "%s: the clients took every descriptor" % what)
    check(cpu < MAX_CPU, "%s: %.1f %% of a core, under %d %%" % (
        what, cpu * 100, MAX_CPU * 100))
    check(lines <= MAX_LOG_LINES, "%s: %d log lines, at most %d" % (
        what, lines, MAX_LOG_LINES))
    for s in socks:
        s.close()


async def ws_serves(st, port):
    """A new WebSocket client connects and gets a query answered."""
    try:
        c = await Client.open(st.url(port), "after")
        await c.modify(add=[(1, "db/query", {"table": "t"})])
        ok = await c.wait(lambda: 1 in c.values, 10)
        await c.close()
        return ok
    except Exception as e:  # noqa: BLE001 -- reported as a failed check
        print("client: %r" % e, flush=True)
        return False


def main(st):
    wlog = os.path.join(st.dir, "writerd.log")
    st.start_writer(nofile=WRITER_NOFILE)
    st.start_gateway()

    path = os.path.join(st.dir, "control.sock")
    since = len(log_text(wlog))
    socks = crowd(socket.AF_UNIX, path, CLIENTS)
    measure("writerd control.sock", st.writer, wlog, socks, since)
    check(wait_for(lambda: ctl(st, "status") is not None, 10),
          "writerd control.sock: a new tinyvexctl is served afterwards")

    path = os.path.join(st.dir, "writer.sock")
    since = len(log_text(wlog))
    socks = crowd(socket.AF_UNIX, path, CLIENTS)
    measure("writerd writer.sock", st.writer, wlog, socks, since)
    g = st.start_gateway()
    check((st.health(g.port) or {}).get("writer") is True,
          "writerd writer.sock: a new gateway links afterwards")

    g = st.start_gateway(nofile=GATEWAY_NOFILE)
    glog = st.logs[-1]
    since = len(log_text(glog))
    socks = crowd(socket.AF_INET, ("127.0.0.1", g.port), CLIENTS)
    measure("gatewayd WebSocket port", g, glog, socks, since)
    check(run(ws_serves(st, g.port)),
          "gatewayd: a new WebSocket client is served afterwards")


st = Stack()
try:
    main(st)
finally:
    st.cleanup()
finish()
