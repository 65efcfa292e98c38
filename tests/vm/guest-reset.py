#!/usr/bin/python3
"""Puts the test guest back the way it was when its test scripts began, so
that the scripts of one boot (guest-init.sh) each start from the same state.

  guest-reset.py snapshot        record that state (after stage 2's set-up)
  guest-reset.py restore         put it back; exit 1 when the guest cannot be
                                 (a process that will not die, a function
                                 that will not go back): stage 2 then ends
                                 the boot, and the host boots a fresh guest
                                 for the scripts left

What is put back, in this order:
  1. processes: every process started since the snapshot ends (the units
     started since then are stopped, under systemd); the nvidia stand-in's
     pin is released first, so that no unbind stays blocked in its remove(),
     and its fail_probe cleared;
  2. the sanitizer's reports of a daemon that ended without its script
     reading them, printed as failures of that script;
  3. mounts made since, unmounted;
  4. PCI: every device's driver_override and driver as they were (the
     kernel sequence: driver_override, unbind, drivers_probe), then its
     power/control;
  5. kernel modules loaded since (vfio-pci, ...) unloaded, unloaded ones
     loaded again;
  6. files: every path of the root overlay that differs from the snapshot
     (the overlay's upper layer, which stage 1 shows at /run/vmtest/rw, says
     which) is put back from the snapshot or the lower layer, or removed;
     /run/systemd/system and /run/gpuswitch likewise from a copy;
  7. services: systemd reloaded when units changed, polkitd restarted when
     its rules changed, the bus's configuration reloaded when it changed,
     dbus-daemon and polkitd started again when gone; the journal emptied.

Runs in the QEMU guest only: it writes the guest's PCI sysfs.
"""
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

VMTEST = "/run/vmtest"
STATE = VMTEST + "/state"
UPPER = VMTEST + "/rw/upper"
LOWER = VMTEST + "/lower"
SNAP = STATE + "/upper"           # the overlay's upper layer at the snapshot
RUN_SNAP = STATE + "/run"         # copies of the /run folders below
RUN_TREES = ["run/systemd/system", "run/gpuswitch"]
# Written all along by the services that outlive every script: never put back.
IGNORED = ("var/log", "var/lib/systemd", "var/cache", "var/tmp/systemd-private-")
PCI = "/sys/bus/pci"
PIN = "/sys/module/gpuswitch_test/parameters/pin"
FAIL_PROBE = "/sys/module/gpuswitch_test/parameters/fail_probe"
NVIDIA_PROCFS = "/sys/module/gpuswitch_test/parameters/nvidia_procfs"

def testvm_marker():
    """The marker of the test VM's kernel command line, as testvm-guard.sh says."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "testvm-guard.sh")) as f:
        for line in f:
            if line.startswith("GPUSWITCH_TESTVM_MARKER="):
                return line.split("=", 1)[1].strip()
    raise RuntimeError("no GPUSWITCH_TESTVM_MARKER in testvm-guard.sh")


systemd = os.path.isdir("/run/systemd/system")


def log(msg):
    print("VMTEST: reset: " + msg, flush=True)


def run(*argv, timeout=60, check=False):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stdout.strip()}")
    return r


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


def save(name, lines):
    with open(f"{STATE}/{name}", "w") as f:
        f.write("".join(f"{l}\n" for l in sorted(lines)))


def load(name):
    with open(f"{STATE}/{name}") as f:
        return [l.rstrip("\n") for l in f]


# ---- processes ---------------------------------------------------------------

def pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def is_kernel_thread(pid):
    # kernel threads have no memory map: an empty cmdline and kthreadd (2) as parent
    return pid == 2 or read(f"/proc/{pid}/stat", "0 (x) S 0").rsplit(")", 1)[1].split()[1] == "2"


def ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            pid = int(read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[1])
        except (ValueError, IndexError):
            break
    return out


def comm(pid):
    return read(f"/proc/{pid}/comm", "?")


def active_units():
    r = run("systemctl", "list-units", "--state=active", "--plain", "--no-legend", "--no-pager",
            "--type=service,socket,scope,mount,timer,path")
    return {l.split()[0] for l in r.stdout.splitlines() if l.strip()}


def own_cgroup_procs():
    cg = read("/proc/self/cgroup").split("::", 1)[-1]
    try:
        with open(f"/sys/fs/cgroup{cg}/cgroup.procs") as f:
            return {int(l) for l in f if l.strip()}
    except OSError:
        return set()


def strangers():
    """The processes to end: those the scripts started.  Under systemd, those
    left in stage 2's own cgroup (the units started since are stopped); without
    it, every process that was not there at the snapshot."""
    keep = ancestors() | {1}
    if systemd:
        candidates = own_cgroup_procs()
    else:
        base = {int(p) for p in load("pids")}
        candidates = pids() - base
    return {p for p in candidates - keep if os.path.exists(f"/proc/{p}") and not is_kernel_thread(p)}


def end_processes():
    if os.path.exists(PIN):
        write(PIN, "0")
    # the stand-in probes again when its function is put back (step 4)
    if os.path.exists(FAIL_PROBE):
        write(FAIL_PROBE, "0")
    if os.path.exists(NVIDIA_PROCFS):
        write(NVIDIA_PROCFS, "0")
    if systemd:
        base = set(load("units"))
        extra = sorted(active_units() - base)
        if extra:
            log("stopping " + " ".join(extra))
            run("systemctl", "stop", *extra, timeout=90)
        run("systemctl", "reset-failed")
    # gpuswitchd first and gently: a sanitized daemon reports its leaks at exit
    daemons = [p for p in strangers() if comm(p) == "gpuswitchd"]
    for p in daemons:
        os.kill(p, signal.SIGTERM)
    wait_gone(daemons, 30)
    left = strangers()
    if left:
        log("ending " + " ".join(f"{p}({comm(p)})" for p in sorted(left)))
    for _ in range(100):
        left = strangers()
        if not left:
            return
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise RuntimeError("processes that do not end: " +
                       " ".join(f"{p}({comm(p)}, {read(f'/proc/{p}/wchan')})" for p in sorted(strangers())))


def wait_gone(pids_, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(os.path.exists(f"/proc/{p}") for p in pids_):
        time.sleep(0.1)


def sanitizer_reports():
    d = os.environ.get("VMTEST_SANDIR")
    if not d or not os.path.isdir(d):
        return
    for f in sorted(os.listdir(d)):
        print(f"RESULT sanitizer-report-{f} FAIL (found by the reset after the script)", flush=True)
        print(read(f"{d}/{f}"), flush=True)
        os.unlink(f"{d}/{f}")


# ---- mounts ------------------------------------------------------------------

def mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            out.append((fields[4], line.split(" - ")[1].split()[0]))
    return out


def undo_mounts():
    base = set(load("mounts"))
    for point, fstype in reversed(mounts()):
        key = f"{point} {fstype}"
        if key in base or point.startswith(("/proc/", "/sys/", "/dev/")) or fstype in ("autofs", "binfmt_misc"):
            continue
        log(f"unmounting {point} ({fstype})")
        run("umount", "-l", point, check=True)


# ---- PCI -----------------------------------------------------------------------

def pci_state():
    out = {}
    for dev in sorted(os.listdir(f"{PCI}/devices")):
        link = f"{PCI}/devices/{dev}/driver"
        driver = os.path.basename(os.readlink(link)) if os.path.islink(link) else "none"
        out[dev] = (driver, read(f"{PCI}/devices/{dev}/driver_override", "(null)"))
    return out


def restore_pci():
    base = {}
    for line in load("pci"):
        dev, driver, override = line.split(" ", 2)
        base[dev] = (driver, override)
    now = pci_state()
    moved = [d for d in base if now.get(d) != base[d]]
    if not moved:
        return
    # The writes run in a child: an unbind blocked in a driver's remove()
    # cannot be interrupted, and would hang the reset with it.
    child = os.fork()
    if child == 0:
        try:
            for dev in moved:
                driver, override = base[dev]
                path = f"{PCI}/devices/{dev}"
                write(f"{path}/driver_override", "\n" if override == "(null)" else override)
                if os.path.islink(f"{path}/driver"):
                    write(f"{path}/driver/unbind", dev)
                if driver != "none":
                    write(f"{PCI}/drivers_probe", dev)
            os._exit(0)
        except OSError as e:
            print(f"VMTEST: reset: PCI write failed: {e}", flush=True)
            os._exit(1)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pid, _ = os.waitpid(child, os.WNOHANG)
        if pid:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"a PCI write has not returned after 60 s: {read(f'/proc/{child}/wchan')}")
    now = pci_state()
    for dev in moved:
        log(f"{dev}: {now.get(dev, ('gone', ''))[0]}[{now.get(dev, ('', ''))[1]}], was moved")
    wrong = [f"{d} on {now.get(d, 'nothing: gone from the bus')} instead of {base[d]}" for d in moved if now.get(d) != base[d]]
    if wrong:
        raise RuntimeError("PCI devices not back: " + "; ".join(wrong))
    # A driver goes on after its probe (the HDA codec, the DRM card): the
    # nodes the scripts look for are there before the next one starts.
    nodes = [n for n in load("pci-nodes") if n.split("/")[0] in moved]
    end = time.monotonic() + 10
    while time.monotonic() < end and not all(os.path.exists(f"{PCI}/devices/{n}") for n in nodes):
        time.sleep(0.1)
    missing = [n for n in nodes if not os.path.exists(f"{PCI}/devices/{n}")]
    if missing:
        raise RuntimeError("device nodes not back 10 s after the probe: " + " ".join(missing))


def pci_power():
    """Each PCI device's power/control ("on", "auto"): drivers change it (vfio-pci
    allows runtime PM), and so do the daemon and the tests."""
    return {d: read(f"{PCI}/devices/{d}/power/control") for d in sorted(os.listdir(f"{PCI}/devices"))
            if os.path.exists(f"{PCI}/devices/{d}/power/control")}


def restore_pci_power():
    now = pci_power()
    for line in load("pci-power"):
        dev, control = line.split(" ", 1)
        if dev in now and now[dev] != control:
            write(f"{PCI}/devices/{dev}/power/control", control)
            log(f"{dev}: power/control {control}, was {now[dev]}")


def pci_nodes():
    """Each PCI device's DRM and sound devices, as DEVICE/drm/cardN, DEVICE/sound/cardN/controlCN."""
    out = []
    for dev in os.listdir(f"{PCI}/devices"):
        for sub in ("drm", "sound"):
            top = f"{PCI}/devices/{dev}/{sub}"
            if os.path.isdir(top):
                for name in os.listdir(top):
                    out.append(f"{dev}/{sub}/{name}")
                    if sub == "sound" and os.path.isdir(f"{top}/{name}"):
                        out += [f"{dev}/{sub}/{name}/{c}" for c in os.listdir(f"{top}/{name}") if c.startswith("control")]
    return out


# ---- modules -------------------------------------------------------------------

def modules():
    with open("/proc/modules") as f:
        return {l.split()[0]: int(l.split()[2]) for l in f}


def restore_modules(testmod):
    base = set(load("modules"))
    for _ in range(10):   # unload from the top: a module in use by another waits for it
        extra = {m: users for m, users in modules().items() if m not in base}
        free = [m for m, users in extra.items() if users == 0]
        if not free:
            break
        for m in free:
            run("rmmod", m)
    extra = sorted(set(modules()) - base)
    if extra:
        raise RuntimeError("modules that will not unload: " + " ".join(extra))
    for m in sorted(base - set(modules())):
        log(f"loading {m} again")
        if m == "gpuswitch_test" and testmod:
            run("insmod", testmod, check=True)
        else:
            run("modprobe", m, check=True)


# ---- files ---------------------------------------------------------------------

def is_opaque(path):
    """An overlay folder that hides the lower layer's: one removed and made again."""
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def entry(path):
    """What makes two versions of a path the same, for a reset."""
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    e = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
    if stat.S_ISDIR(st.st_mode):
        e.append(is_opaque(path))
    elif stat.S_ISLNK(st.st_mode):
        e.append(os.readlink(path))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        e.append(st.st_rdev)
    else:
        e += [st.st_size, st.st_mtime_ns]
    return repr(e)


def tree(top):
    out = {}
    if not os.path.isdir(top):
        return out
    for root, dirs, files in os.walk(top):
        rel = os.path.relpath(root, top)
        for name in dirs + files:
            p = name if rel == "." else f"{rel}/{name}"
            if not p.startswith(IGNORED):
                out[p] = entry(f"{top}/{p}")
    return out


def is_whiteout(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def original(rel, snap, lower):
    """Where path REL's version at the snapshot is, or None when it had none."""
    s = f"{snap}/{rel}"
    if os.path.lexists(s):
        return None if is_whiteout(s) else s
    if lower and os.path.lexists(f"{lower}/{rel}"):
        return f"{lower}/{rel}"
    return None


def put_back(rel, src, root="/", lower=None):
    dst = os.path.join(root, rel)
    if os.path.lexists(dst) and (src is None or os.path.isdir(dst) != os.path.isdir(src)
                                 or os.path.islink(dst) or os.path.islink(src)):
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        else:
            os.unlink(dst)
    if src is None:
        return
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(dst, exist_ok=True)
        if lower and is_opaque(f"{UPPER}/{rel}") and not is_opaque(src) and os.path.isdir(f"{lower}/{rel}"):
            # made again over a removed one: the lower layer's files, hidden
            # now, back in the upper one (the snapshot's follow, as changed paths)
            run("cp", "-a", "-T", f"{lower}/{rel}", dst, check=True)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        shutil.copy2(src, dst, follow_symlinks=False)
    else:
        os.mknod(dst, st.st_mode, st.st_rdev)
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))


def restore_tree(name, top, snap, lower, root):
    """Puts back every path under TOP that differs from the state recorded as
    NAME; returns the paths put back."""
    before = dict(l.split("\t", 1) for l in load(name))
    now = tree(top)
    changed = sorted((p for p in set(before) | set(now) if before.get(p) != now.get(p)),
                     key=lambda p: (p.count("/"), p))
    # parents first: a folder made again before its files, removed before them
    for rel in changed:
        put_back(rel, original(rel, snap, lower), root, lower)
    save(name, [f"{p}\t{e}" for p, e in tree(top).items()])
    return changed


def restore_files():
    changed = restore_tree("upper-tree", UPPER, SNAP, LOWER, "/")
    for t in RUN_TREES:
        changed += [f"{t}/{p}" for p in
                    restore_tree(t.replace("/", "_"), "/" + t, f"{RUN_SNAP}/{t}", None, "/" + t)]
    if changed:
        shown = changed if len(changed) <= 12 else changed[:12] + [f"... ({len(changed)} in all)"]
        log("put back " + " ".join(shown))
    return changed


# ---- services ------------------------------------------------------------------

def has_owner(name):
    r = run("dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus", "/",
            "org.freedesktop.DBus.NameHasOwner", f"string:{name}", timeout=20)
    return "boolean true" in r.stdout


def wait_owner(name, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if has_owner(name):
            return True
        time.sleep(0.2)
    return False


def start_polkitd():
    log_ = open(f"{VMTEST}/polkitd.log", "a")
    subprocess.Popen(["/usr/lib/polkit-1/polkitd", "--no-debug"], stdout=log_, stderr=log_,
                     start_new_session=True)


def restore_services(changed):
    def touched(*prefixes):
        return any(p.startswith(prefixes) for p in changed)
    units = touched("etc/systemd", "usr/lib/systemd", "lib/systemd", "run/systemd/system")
    rules = touched("etc/polkit-1", "usr/share/polkit-1")
    bus = touched("etc/dbus-1", "usr/share/dbus-1")
    if systemd:
        if units:
            run("systemctl", "daemon-reload", check=True)
        base = set(load("units"))
        gone = sorted(base - active_units())
        if gone:
            log("starting " + " ".join(gone))
            run("systemctl", "start", *gone, timeout=90)
        if rules:
            run("systemctl", "restart", "polkit.service", check=True)
        run("journalctl", "--rotate")
        run("journalctl", "--vacuum-time=1s")
    else:
        if not os.path.exists("/run/dbus/system_bus_socket") or not any(
                comm(p) == "dbus-daemon" for p in pids()):
            log("starting dbus-daemon again")
            run("dbus-daemon", "--system", "--fork", check=True)
        polkitd = [p for p in pids() if comm(p) == "polkitd"]
        if rules or not polkitd:
            for p in polkitd:
                os.kill(p, signal.SIGTERM)
            wait_gone(polkitd, 10)
            start_polkitd()
    if bus:
        run("dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus", "/",
            "org.freedesktop.DBus.ReloadConfig")
    if not wait_owner("org.freedesktop.PolicyKit1"):
        raise RuntimeError("polkitd is not on the bus")
    if has_owner("org.gpuswitch1"):
        raise RuntimeError("org.gpuswitch1 still has an owner")


# ---- the two verbs ---------------------------------------------------------------

def snapshot():
    os.makedirs(STATE, exist_ok=True)
    if not os.path.isdir(UPPER):
        raise RuntimeError(f"no overlay upper layer at {UPPER} (stage 1 shows it there)")
    # cp -a: whiteouts (character devices), owners and the overlay's xattrs as they are
    shutil.rmtree(SNAP, ignore_errors=True)
    run("cp", "-a", UPPER, SNAP, check=True)
    save("upper-tree", [f"{p}\t{e}" for p, e in tree(UPPER).items()])
    for t in RUN_TREES:
        shutil.rmtree(f"{RUN_SNAP}/{t}", ignore_errors=True)
        if os.path.isdir("/" + t):
            os.makedirs(os.path.dirname(f"{RUN_SNAP}/{t}"), exist_ok=True)
            run("cp", "-a", "/" + t, f"{RUN_SNAP}/{t}", check=True)
        save(t.replace("/", "_"), [f"{p}\t{e}" for p, e in tree("/" + t).items()])
    save("pids", [str(p) for p in pids()])
    save("mounts", [f"{p} {t}" for p, t in mounts()])
    save("pci", [f"{d} {drv} {o}" for d, (drv, o) in pci_state().items()])
    save("pci-nodes", pci_nodes())
    save("pci-power", [f"{d} {c}" for d, c in pci_power().items()])
    save("modules", modules())
    if systemd:
        save("units", active_units())


def restore():
    end_processes()
    sanitizer_reports()
    undo_mounts()
    restore_pci()
    restore_pci_power()
    restore_modules(os.environ.get("VMTEST_TESTMOD"))
    restore_services(restore_files())
    save("pids", [str(p) for p in pids()])


def main():
    marker = testvm_marker()
    if marker not in read("/proc/cmdline").split():
        print(f"guest-reset.py: refusing to run: this is not the gpuswitch test VM ({marker} is not on "
              "the kernel command line), and guest-reset.py writes PCI sysfs; run it with tests/vm/run-vm-test.sh",
              file=sys.stderr)
        sys.exit(77)
    verb = sys.argv[1] if len(sys.argv) == 2 else ""
    try:
        if verb == "snapshot":
            snapshot()
        elif verb == "restore":
            t0 = time.monotonic()
            restore()
            log(f"done in {time.monotonic() - t0:.1f} s")
        else:
            sys.exit("usage: guest-reset.py snapshot|restore")
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        print(f"VMTEST: reset failed: {e}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
