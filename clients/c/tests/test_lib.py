"""libtinyvex against the real daemons: test_lib (C) runs each scenario;
this driver starts the daemons and, for the reconnect scenario, kills
the gateway when told and starts a new one on the same port."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "integration"))
import tvtest  # noqa: E402
from tvtest import check  # noqa: E402

TEST_LIB = sys.argv[1]


def run_scenario(st, args, on_line=None, timeout=300):
    p = subprocess.Popen([TEST_LIB] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        sys.stdout.write("  " + line)
        sys.stdout.flush()
        if on_line:
            on_line(line.strip(), p)
    rc = p.wait(timeout)
    check(rc == 0, "test_lib %s passed" % args[0])


def main():
    st = tvtest.Stack()
    try:
        st.start_writer()
        gw = st.start_gateway()
        port = gw.port
        url = st.url()
        run_scenario(st, ["basic", url])
        run_scenario(st, ["diff", url, "7"])
        run_scenario(st, ["provider", url])
        run_scenario(st, ["pages", url])

        def restart(line, p):
            if line != "KILL":
                return
            g = st.gateways.pop()
            g.kill()
            g.wait()
            st.start_gateway(port=port)
            p.stdin.write("go\n")
            p.stdin.flush()

        run_scenario(st, ["reconnect", url], restart)
    finally:
        st.cleanup()
    # Transitions cut into chunks of 1 KiB: the library joins them.
    st = tvtest.Stack(conf="chunk_bytes 1K\n")
    try:
        st.start_writer()
        st.start_gateway()
        run_scenario(st, ["chunks", st.url(), "11"])
    finally:
        st.cleanup()
    tvtest.finish()


main()
