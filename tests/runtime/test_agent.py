"""The /proc agent: container mapping on a /proc-shaped fixture tree, and real processes the test starts."""

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keelwatch.runtime.agent import (
    ContainerRef,
    ProcReader,
    Sampler,
    container_from_cgroup,
    decode_address,
    parse_net_table,
    python_script,
)

CGROUPS = Path(__file__).with_name("data") / "cgroup"
DOCKER_ID = "3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"
CONTAINERD_ID = "b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4"
CRIO_ID = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
POD_UID = "0f3e6b42-7d21-4c1a-9e5b-2f8c9d0a1b3c"

EXPECTED = {
    "docker-cgroupfs-v1": ContainerRef(DOCKER_ID, "docker"),
    "docker-cgroupfs-v2": ContainerRef(DOCKER_ID, "docker"),
    "docker-systemd-v2": ContainerRef(DOCKER_ID, "docker"),
    "containerd-k8s-systemd-v2": ContainerRef(CONTAINERD_ID, "containerd", POD_UID),
    "containerd-k8s-cgroupfs-v1": ContainerRef(CONTAINERD_ID, "", POD_UID),  # the path does not name the runtime
    "crio-k8s-systemd-v2": ContainerRef(CRIO_ID, "cri-o", POD_UID),
    "crio-k8s-systemd-v1": ContainerRef(CRIO_ID, "cri-o", POD_UID),
    "crio-k8s-cgroupfs-v2": ContainerRef(CRIO_ID, "cri-o", POD_UID),
    "crio-conmon-v2": None,
    "podman-rootless-v2": ContainerRef(DOCKER_ID, "podman"),
    "kind-node-nested-v2": ContainerRef(CONTAINERD_ID, "containerd", POD_UID),
    "host-systemd-v2": None,
    "host-v1": None,
}


def test_every_cgroup_fixture_has_an_expectation():
    assert {p.name for p in CGROUPS.iterdir()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_container_from_cgroup(name):
    assert container_from_cgroup((CGROUPS / name).read_text()) == EXPECTED[name]


# --- a /proc-shaped tree ---------------------------------------------------------------------------


def hexaddr(address: str, port: int) -> str:
    """The kernel's spelling of an address in /proc/net/*: each 32-bit word in host byte order."""
    import ipaddress

    raw = ipaddress.ip_address(address).packed
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return f"{raw.hex().upper()}:{port:04X}"


def net_line(n: int, local: tuple[str, int], remote: tuple[str, int], state: str, inode: int) -> str:
    return (f"{n:4d}: {hexaddr(*local)} {hexaddr(*remote)} {state} 00000000:00000000 00:00000000 00000000"
            f"     0        0 {inode} 1 0000000000000000 20 4 30 10 -1")


HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"


def make_process(root: Path, pid: int, *, ppid: int, exe: str, argv: list[str], cgroup: str, maps: list[str] = (),
                 fds: dict[str, str] | None = None, netns: str = "net:[4026531840]", tcp: list[str] = (),
                 tcp6: list[str] = (), udp: list[str] = (), cwd: str = "/") -> Path:
    d = root / str(pid)
    (d / "fd").mkdir(parents=True)
    (d / "ns").mkdir()
    (d / "net").mkdir()
    comm = Path(exe).name
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 "
                            f"{1000 + pid} 10000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "cgroup").write_text(cgroup)
    os.symlink(exe, d / "exe")
    os.symlink(cwd, d / "cwd")
    os.symlink(netns, d / "ns" / "net")
    (d / "maps").write_text("".join(
        f"7f00000{i:02x}000-7f00000{i:02x}fff r-xp 00000000 fd:01 {1000 + i}                    {p}\n"
        for i, p in enumerate(maps)) + "7ffd0000-7ffd1000 rw-p 00000000 00:00 0                          [stack]\n")
    for fd, target in (fds or {}).items():
        os.symlink(target, d / "fd" / fd)
    (d / "net" / "tcp").write_text("\n".join([HEADER, *tcp]) + "\n")
    (d / "net" / "tcp6").write_text("\n".join([HEADER, *tcp6]) + "\n")
    (d / "net" / "udp").write_text("\n".join([HEADER, *udp]) + "\n")
    (d / "net" / "udp6").write_text(HEADER + "\n")
    return d


@pytest.fixture
def proc_tree(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    (root / "self").mkdir()  # not a pid: ignored
    make_process(root, 1, ppid=0, exe="/usr/lib/systemd/systemd", argv=["/sbin/init"],
                 cgroup=(CGROUPS / "host-systemd-v2").read_text())
    make_process(root, 4100, ppid=1, exe="/usr/bin/containerd-shim-runc-v2", argv=["shim"],
                 cgroup="0::/system.slice/containerd.service\n")
    make_process(
        root, 4242, ppid=4100, exe="/usr/local/bin/python3.11", argv=["python3", "-u", "app/main.py"], cwd="/srv",
        cgroup=(CGROUPS / "containerd-k8s-systemd-v2").read_text(),
        maps=["/usr/local/lib/libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libc.so.6",
              "/usr/lib/locale/C.utf8/LC_CTYPE", "/plugins/ext.cpython-311-x86_64-linux-gnu.so (deleted)"],
        fds={"0": "/dev/null", "3": "socket:[9001]", "4": "socket:[9002]", "5": "/opt/lib/app.jar",
             "6": "socket:[9003]", "7": "socket:[9004]", "8": "pipe:[77]", "9": "socket:[9005]"},
        netns="net:[4026532500]",
        tcp=[net_line(0, ("0.0.0.0", 8080), ("0.0.0.0", 0), "0A", 9001),
             net_line(1, ("10.244.1.5", 8080), ("10.244.1.9", 51234), "01", 9002),  # accepted: a client
             net_line(2, ("10.244.1.5", 40112), ("203.0.113.7", 5432), "01", 9003),
             net_line(3, ("10.244.1.5", 40113), ("198.51.100.1", 443), "06", 9999)],  # TIME_WAIT, not ours
        tcp6=[net_line(0, ("2001:db8::5", 40200), ("2001:db8::1", 443), "02", 9004)],
        udp=[net_line(0, ("0.0.0.0", 5353), ("0.0.0.0", 0), "07", 9005)],
    )
    return root


def test_reader_on_a_fixture_tree(proc_tree):
    reader = ProcReader(str(proc_tree))
    infos = {i.pid: i for i in reader.processes()}
    assert sorted(infos) == [1, 4100, 4242]
    app = infos[4242]
    assert app.ppid == 4100 and app.exe == "/usr/local/bin/python3.11"
    assert app.cmdline == ("python3", "-u", "app/main.py")
    assert app.container == ContainerRef(CONTAINERD_ID, "containerd", POD_UID)
    assert infos[1].container is None and infos[4100].container is None
    assert app.files == {"/usr/local/lib/libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                         "/plugins/ext.cpython-311-x86_64-linux-gnu.so", "/opt/lib/app.jar", "/srv/app/main.py"}
    assert {s.inode for s in app.sockets} == {9001, 9002, 9003, 9004, 9005}
    assert reader.stats.vanished == 0 and reader.stats.partial == 0


def test_sampler_events_and_only_changes(proc_tree):
    clock = [datetime(2024, 5, 2, 10, 0, tzinfo=UTC)]
    sampler = Sampler(ProcReader(str(proc_tree)), node="node-a", clock=lambda: clock[0])
    first = [e for e in sampler.sample() if e.pid == 4242]
    assert [e.kind for e in first].count("exec") == 1
    exec_ = first[0]
    assert (exec_.kind, exec_.container_id, exec_.runtime, exec_.parent) == (
        "exec", CONTAINERD_ID, "containerd", "/usr/bin/containerd-shim-runc-v2")
    assert exec_.args == "python3 -u app/main.py" and exec_.node == "node-a"
    assert {e.path for e in first if e.kind == "open"} == {
        "/usr/local/lib/libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/plugins/ext.cpython-311-x86_64-linux-gnu.so", "/opt/lib/app.jar", "/srv/app/main.py"}
    assert {(e.protocol, e.address, e.port) for e in first if e.kind == "connect"} == {
        ("tcp", "203.0.113.7", 5432), ("tcp", "2001:db8::1", 443)}
    assert {(e.protocol, e.address, e.port) for e in first if e.kind == "listen"} == {
        ("tcp", "0.0.0.0", 8080), ("udp", "0.0.0.0", 5353)}

    clock[0] = datetime(2024, 5, 2, 10, 0, 30, tzinfo=UTC)
    assert sampler.sample() == []  # nothing changed, nothing said

    # A new library and a new peer appear: only they are reported.
    d = proc_tree / "4242"
    with open(d / "maps", "a") as f:
        f.write("7f0000a0000-7f0000a1000 r-xp 00000000 fd:01 5555     /tmp/dropped/libx.so\n")
    os.symlink("socket:[9006]", d / "fd" / "10")
    with open(d / "net" / "tcp", "a") as f:
        f.write(net_line(4, ("10.244.1.5", 40114), ("192.0.2.66", 4444), "02", 9006) + "\n")
    second = sampler.sample()
    assert [(e.kind, e.path or f"{e.address}:{e.port}") for e in second] == [
        ("open", "/tmp/dropped/libx.so"), ("connect", "192.0.2.66:4444")]
    assert second[0].time == clock[0]

    # A pid reused by a new process (another start time) is a new exec.
    stat = (d / "stat").read_text().split()
    stat[21] = "999999"
    (d / "stat").write_text(" ".join(stat) + "\n")
    third = sampler.sample()
    assert [e.kind for e in third].count("exec") == 1 and third[0].pid == 4242


def test_vanishing_and_half_readable_processes_are_skipped(proc_tree):
    (proc_tree / "5000").mkdir()  # listed, then gone before stat could be read
    (proc_tree / "5001").mkdir()
    (proc_tree / "5001" / "stat").write_text("5001 (trunc")  # caught exiting: stat cut short
    (proc_tree / "5001" / "cmdline").write_bytes(b"")
    d = make_process(proc_tree, 5002, ppid=1, exe="/usr/bin/sleep", argv=["sleep", "9"], cgroup="0::/init.scope\n")
    shutil.rmtree(d / "fd")
    (d / "maps").unlink()
    reader = ProcReader(str(proc_tree))
    infos = {i.pid: i for i in reader.processes()}
    assert 5000 not in infos and 5001 not in infos
    assert infos[5002].files == frozenset() and infos[5002].sockets == ()
    assert reader.stats.vanished == 2 and reader.stats.partial == 1
    assert ProcReader(str(proc_tree / "missing")).pids() == []


def test_address_decoding_and_bad_table_lines():
    assert decode_address(hexaddr("127.0.0.1", 8080)) == ("127.0.0.1", 8080)
    assert decode_address(hexaddr("::ffff:10.1.2.3", 53)) == ("10.1.2.3", 53)
    assert decode_address(hexaddr("2001:db8::1", 443)) == ("2001:db8::1", 443)
    table = parse_net_table("\n".join([HEADER, "garbage", net_line(0, ("1.2.3.4", 1), ("5.6.7.8", 2), "01", 7),
                                       "   1: ZZZZ:0001 00000000:0000 01 0 0 0 0 0 8"]), "tcp")
    assert list(table) == [7] and table[7].remote_address == "5.6.7.8"


def test_python_script_of_a_command_line():
    assert python_script("/usr/bin/python3.11", ("python3", "-u", "run.py"), "/app") == "/app/run.py"
    assert python_script("/usr/bin/python3.11", ("python3", "/opt/x/../y.py"), "/") == "/opt/y.py"
    assert python_script("/usr/bin/python3.11", ("python3", "-m", "http.server"), "/") == ""
    assert python_script("/usr/bin/python3.11", ("python3", "-c", "print(1)"), "/") == ""
    assert python_script("/usr/bin/node", ("node", "x.py"), "/") == ""


# --- real processes -------------------------------------------------------------------------------


def a_shared_object() -> Path:
    """A real ELF shared object this Python can dlopen: one of its own extension modules."""
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "")
    for name in ("_json", "_struct", "math", "_bisect"):
        module = sys.modules.get(name) or __import__(name)
        file = getattr(module, "__file__", None)
        if file and file.endswith(".so"):
            return Path(file)
    found = sorted(dynload.glob("*.so")) if dynload.is_dir() else []
    if not found:
        pytest.skip("this Python has no shared-object extension modules to load")
    return found[0]


PLUGIN_RUNNER = textwrap.dedent("""
    import ctypes, socket, sys
    sys.path.insert(0, sys.argv[1])
    import plugin_mod                                   # imported, then closed: invisible in /proc
    lib = ctypes.CDLL(sys.argv[1] + "/libplugin.so")    # mapped: in maps
    jar = open(sys.argv[1] + "/vendor.jar", "rb")       # held open, as a JVM holds its jars
    conn = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    print("ready", plugin_mod.NAME, flush=True)
    sys.stdin.readline()
    lib2 = ctypes.CDLL(sys.argv[1] + "/libplugin2.so")
    print("more", flush=True)
    sys.stdin.readline()
""")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_agent_on_real_processes(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "runner.py").write_text(PLUGIN_RUNNER)
    (plugins / "plugin_mod.py").write_text("NAME = 'plugin'\n")
    so = a_shared_object()
    shutil.copy(so, plugins / "libplugin.so")
    shutil.copy(so, plugins / "libplugin2.so")
    (plugins / "vendor.jar").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    child = subprocess.Popen([sys.executable, str(plugins / "runner.py"), str(plugins), str(port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert child.stdout.readline().split() == ["ready", "plugin"]
        accepted, _ = listener.accept()
        sampler = Sampler(ProcReader(), pids=[child.pid, os.getpid()])
        events = sampler.sample()
        mine = [e for e in events if e.pid == child.pid]
        assert mine[0].kind == "exec"
        assert mine[0].executable == os.path.realpath(sys.executable)
        assert mine[0].args == f"{sys.executable} {plugins / 'runner.py'} {plugins} {port}"
        opened = {e.path for e in mine if e.kind == "open"}
        assert {str(plugins / "runner.py"), str(plugins / "libplugin.so"), str(plugins / "vendor.jar")} <= opened
        assert str(plugins / "plugin_mod.py") not in opened  # what /proc cannot show, it does not invent
        assert str(plugins / "libplugin2.so") not in opened
        assert [(e.protocol, e.address, e.port) for e in mine if e.kind == "connect"] == [("tcp", "127.0.0.1", port)]
        ours = [e for e in events if e.pid == os.getpid()]
        assert ("tcp", "127.0.0.1", port) in {(e.protocol, e.address, e.port) for e in ours if e.kind == "listen"}
        # The accepted end of the connection is inbound: not a peer of ours.
        assert port not in {e.port for e in ours if e.kind == "connect"}

        assert [e for e in sampler.sample() if e.pid == child.pid] == []
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "more"
        later = [e for e in sampler.sample() if e.pid == child.pid]
        assert [(e.kind, e.path) for e in later] == [("open", str(plugins / "libplugin2.so"))]
        accepted.close()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        listener.close()
    after = Sampler(ProcReader(), pids=[child.pid]).sample()
    assert after == []  # exited: vanished, skipped, no error
