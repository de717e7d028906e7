#!/usr/bin/python3
"""
The files in contrib/: launchd property lists, systemd units and the
example configuration.

Usage: check_contrib.py SRCDIR BUILDDIR WRITERD GATEWAYD

SRCDIR is the source tree's contrib/, BUILDDIR the build tree's (where
the plists and units have their install paths filled in).  Checks that
the plists parse and carry the keys launchd needs; that the units have
the service settings and hardening they should, the gateway ordered
after the writer without being bound to it, and that systemd-analyze
verify accepts them (when systemd-analyze exists); and that the example
configuration names exactly the keys of tinyvex.conf(5) and of the
parser, with the manual's defaults, and that a file with every key
uncommented is accepted by both daemons.  Standard library only.
"""
import os
import plistlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

START_TIMEOUT = 10      # seconds for a daemon to come up
STOP_TIMEOUT = 5        # seconds for it to exit on SIGTERM

failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s: %s%s" % ("ok" if ok else "FAIL", name,
                        "" if ok or not detail else " (%s)" % detail))
    sys.stdout.flush()
    if not ok:
        failures += 1
    return ok


# -- launchd ----------------------------------------------------------------

def check_plists(src, build):
    for daemon in ("writerd", "gatewayd"):
        name = "org.tinyvex.%s.plist" % daemon
        for where, path in (("source", os.path.join(src, "launchd", name)),
                            ("configured", os.path.join(build, name))):
            try:
                with open(path, "rb") as f:
                    p = plistlib.load(f)
            except (OSError, ValueError) as e:
                check("%s %s parses" % (where, name), False, str(e))
                continue
            check("%s %s parses" % (where, name), isinstance(p, dict))
            args = p.get("ProgramArguments")
            check("%s: Label is the file name" % name,
                  p.get("Label") == name[:-len(".plist")], repr(p.get("Label")))
            check("%s: ProgramArguments runs %s with -d" % (name, daemon),
                  isinstance(args, list) and args and
                  all(isinstance(a, str) for a in args) and
                  args[0].endswith("/" + daemon) and "-d" in args[1:],
                  repr(args))
            check("%s: KeepAlive, RunAtLoad" % name,
                  (p.get("KeepAlive") is True or
                   isinstance(p.get("KeepAlive"), dict)) and
                  p.get("RunAtLoad") is True, repr(p))
            check("%s: a throttle interval" % name,
                  type(p.get("ThrottleInterval")) is int and
                  p["ThrottleInterval"] > 0, repr(p.get("ThrottleInterval")))
            if where == "configured":
                check("%s: install path filled in, absolute" % name,
                      args and args[0].startswith("/") and
                      "@" not in "".join(args), repr(args))


# -- systemd ----------------------------------------------------------------

def parse_unit(path):
    """{section: {key: [values]}}; repeated keys keep every value."""
    out, sec = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                sec = out.setdefault(line[1:-1], {})
                continue
            k, _, v = line.partition("=")
            sec.setdefault(k.strip(), []).append(v.strip())
    return out


def one(u, sec, key):
    v = u.get(sec, {}).get(key)
    return v[-1] if v else None


def check_units(src, build, bins):
    units = {}
    for daemon in ("writerd", "gatewayd"):
        name = "tinyvex-%s.service" % daemon
        path = os.path.join(build, name)
        check("configured %s exists" % name, os.path.exists(path), path)
        if not os.path.exists(path):
            continue
        u = parse_unit(path)
        units[daemon] = (name, path)
        s = "Service"
        exe = (one(u, s, "ExecStart") or "").split()
        check("%s: Type=simple" % name, one(u, s, "Type") == "simple")
        check("%s: Restart with RestartSec" % name,
              one(u, s, "Restart") in ("always", "on-failure") and
              one(u, s, "RestartSec") is not None)
        check("%s: ExecStart runs %s -d, install path filled in" %
              (name, daemon),
              exe and exe[0].startswith("/") and
              exe[0].endswith("/" + daemon) and "-d" in exe and
              "@" not in " ".join(exe), repr(exe))
        check("%s: an unprivileged user (User= or -u)" % name,
              one(u, s, "User") not in (None, "root") or "-u" in exe)
        check("%s: state directory /var/lib/tinyvex" % name,
              "-r" in exe and exe[exe.index("-r") + 1] == "/var/lib/tinyvex")
        for k, v in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                     ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
            check("%s: %s=%s" % (name, k, v), one(u, s, k) == v,
                  repr(one(u, s, k)))
        check("%s: ReadWritePaths=/var/lib/tinyvex" % name,
              "/var/lib/tinyvex" in " ".join(u[s].get("ReadWritePaths", [])))
        check("%s: WantedBy in [Install]" % name,
              one(u, "Install", "WantedBy") is not None)
        if daemon == "gatewayd":
            unit = u.get("Unit", {})
            check("%s: After= and Wants= the writer" % name,
                  "tinyvex-writerd.service" in " ".join(unit.get("After", []))
                  and "tinyvex-writerd.service" in
                  " ".join(unit.get("Wants", [])))
            bound = [k for k in ("BindsTo", "Requires", "Requisite", "PartOf")
                     if "tinyvex-writerd.service" in " ".join(unit.get(k, []))]
            check("%s: survives a writer restart (no %s)" % (name,
                  "/".join(("BindsTo", "Requires", "Requisite", "PartOf"))),
                  not bound, repr(bound))
            check("%s: may listen on TCP" % name,
                  "AF_INET" in (one(u, s, "RestrictAddressFamilies") or ""))
        else:
            check("%s: ExecReload sends SIGHUP" % name,
                  "HUP" in (one(u, s, "ExecReload") or ""))

    if shutil.which("systemd-analyze") is None:
        print("note: systemd-analyze not found, units not verified")
        return
    tmp = tempfile.mkdtemp(prefix="tinyvex-units.")
    try:
        names = []
        for daemon, (name, path) in units.items():
            with open(path) as f:
                text = f.read()
            # Point ExecStart at the built daemons, which do exist.
            text = re.sub(r"^ExecStart=\S+", "ExecStart=" + bins[daemon],
                          text, flags=re.M)
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
            names.append(name)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no"] +
                           ["./" + n for n in names], cwd=tmp,
                           capture_output=True, text=True, timeout=60)
        check("systemd-analyze verify: no complaint",
              p.returncode == 0 and p.stderr.strip() == "" and
              p.stdout.strip() == "",
              "rc %d: %s%s" % (p.returncode, p.stdout[-800:], p.stderr[-800:]))
        for n in names:
            p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                "./" + n], cwd=tmp, capture_output=True,
                               text=True, timeout=60)
            lines = [l for l in p.stdout.splitlines() if "exposure" in l]
            print("note: %s: %s" % (n, lines[-1].strip("→ ").strip()
                                    if lines else "no security figure"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the example configuration ---------------------------------------------

SETTING = re.compile(r"^#([a-z_]+) (\S.*)$")


def man_defaults(man):
    """{key: default text, or None when the manual says none}."""
    out = {}
    parts = re.split(r"^\.It Cm ([a-z_]+)\b.*$", man, flags=re.M)
    for i in range(1, len(parts), 2):
        key, body = parts[i], parts[i + 1]
        body = re.split(r"^\.(?:It|El)\b", body, flags=re.M)[0]
        text = " ".join(re.sub(r"^\.\w+\s*", "", l)
                        for l in body.splitlines())
        m = re.search(r"Default:?\s+([^\s;,]+)", text)
        v = m.group(1).rstrip(".") if m else None
        out[key] = None if v in (None, "none") else v
    return out


def start_daemon(args, ready, log):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end and p.poll() is None:
        if ready():
            return p
        time.sleep(0.05)
    return p


def stop_daemon(p):
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                    timeout=2) as r:
            return r.status
    except Exception:  # noqa: BLE001 -- not up yet
        return None


def check_conf(src, bins):
    root = os.path.dirname(os.path.abspath(src))
    example = os.path.join(src, "tinyvex.conf.example")
    with open(example) as f:
        lines = f.read().splitlines()
    with open(os.path.join(root, "man", "tinyvex.conf.5")) as f:
        man = f.read()
    with open(os.path.join(root, "common", "config.c")) as f:
        parser_keys = set(re.findall(r'KEY\("([a-z_]+)"', f.read()))
    settings = [SETTING.match(l).groups() for l in lines if SETTING.match(l)]
    keys = [k for k, _ in settings]
    defaults = man_defaults(man)
    check("example: no setting is left uncommented",
          all(l.startswith("#") or not l.strip() for l in lines))
    check("example: every key once",
          len(keys) == len(set(keys)), repr(sorted(k for k in keys
                                                   if keys.count(k) > 1)))
    check("example: the keys of tinyvex.conf(5), %d" % len(defaults),
          set(keys) == set(defaults),
          "missing %s, extra %s" % (sorted(set(defaults) - set(keys)),
                                    sorted(set(keys) - set(defaults))))
    check("example: the keys of the parser, %d" % len(parser_keys),
          set(keys) == parser_keys,
          "missing %s, extra %s" % (sorted(parser_keys - set(keys)),
                                    sorted(set(keys) - parser_keys)))
    wrong = [(k, v, defaults.get(k)) for k, v in settings
             if defaults.get(k) is not None and v != defaults[k]]
    check("example: every value is the manual's default", not wrong,
          repr(wrong))

    tmp = tempfile.mkdtemp(prefix="tinyvex-conf.")
    try:
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("t" * 32 + "\n")
        user = pwd.getpwuid(os.getuid()).pw_name
        out = []
        for l in lines:
            m = SETTING.match(l)
            if not m:
                out.append(l)
            elif m.group(1) == "token_file":
                out.append("token_file " + token)
            elif m.group(1) == "gateway_user":
                out.append("gateway_user " + user)
            elif m.group(1) == "static_dir":
                out.append("static_dir " + tmp)
            else:
                out.append(l[1:])
        conf = os.path.join(tmp, "tinyvex.conf")
        with open(conf, "w") as f:
            f.write("\n".join(out) + "\n")
        state = os.path.join(tmp, "state")
        logpath = os.path.join(tmp, "daemons.log")
        with open(logpath, "wb") as log:
            sock = os.path.join(state, "control.sock")
            w = start_daemon([bins["writerd"], "-d", "-f", conf, "-r", state],
                             lambda: os.path.exists(sock), log)
            up = os.path.exists(sock) and w.poll() is None
            check("writerd accepts the example with every key uncommented",
                  up, "exit %s" % w.poll())
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            g = start_daemon([bins["gatewayd"], "-d", "-f", conf, "-r", state,
                              "-l", "127.0.0.1:%d" % port],
                             lambda: healthz(port) is not None, log)
            check("gatewayd accepts it too", healthz(port) == 200 and
                  g.poll() is None, "exit %s" % g.poll())
            rcs = (stop_daemon(g), stop_daemon(w))
            check("both stop cleanly on SIGTERM", rcs == (0, 0), repr(rcs))
        if failures:
            with open(logpath, errors="replace") as f:
                sys.stdout.write("--- daemons\n" + f.read()[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: check_contrib.py SRCDIR BUILDDIR WRITERD GATEWAYD")
    src, build = (os.path.abspath(a) for a in sys.argv[1:3])
    bins = {"writerd": os.path.abspath(sys.argv[3]),
            "gatewayd": os.path.abspath(sys.argv[4])}
    check_plists(src, build)
    check_units(src, build, bins)
    check_conf(src, bins)
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
