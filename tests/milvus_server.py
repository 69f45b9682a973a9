"""A real Milvus standalone server for the tests and benchmarks, bound to 127.0.0.1 only.

`MilvusServer` runs the PyPI package `milvus` (2.3.5: the server binary and its libraries
shipped lzma-compressed inside the wheel) as a subprocess on free ports, with its data in a
given directory and its output in a log file; `.start()` returns once a pymilvus call
answers, `.stop()` leaves no process behind, `.restart()` keeps the data.

Why binding needs more than configuration: Milvus 2.3.5's gRPC and HTTP servers listen on
`:PORT`, i.e. on every interface; the `<component>.ip` settings of its `milvus.yaml` only
choose the address it *advertises* (measured: with every `ip: 127.0.0.1` the proxy, the
coordinators, the nodes and the metrics server still listen on `::`). Only the embedded etcd
honours an address (its own `etcd.config.path` file, written here on free ports). So the
launcher confines the process at the system-call level: before `exec` a small wrapper installs
a seccomp filter that hands every `bind()` of the server to this process (a seccomp user
notification); an AF_INET/AF_INET6 bind to any non-loopback address is performed here instead,
on a duplicate of the server's socket (`pidfd_getfd`), to the loopback address with the same
port (`127.0.0.1`, or `::ffff:127.0.0.1` on a dual-stack IPv6 socket, `::1` on a v6-only one),
and the server sees success. No proxy sits in the data path. If this process dies, the server
is killed too (`PR_SET_PDEATHSIG`) and any later bind fails rather than escaping.

Requirements: Linux x86_64 with seccomp user notifications and `pidfd_getfd` (kernel >= 5.6;
in a container, a seccomp profile that allows `seccomp()` and `pidfd_getfd`), and the right to
read the child's memory (`/proc/<pid>/mem`: the launcher is the server's parent, which Yama's
default `ptrace_scope` = 1 allows). Without them `start()` fails with the wrapper's reason.

What this module does not do: it is no production launcher (a cluster is deployed by its
operator, see docs/scale.md), it supports Linux x86_64 only (the platform the `milvus` wheel
ships binaries for) and it does not configure authentication or TLS.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import fcntl
import ipaddress
import os
import platform
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

MILVUS_VERSION = "2.3.5"

# the components whose gRPC port the config template exposes (`{{ name(int): default }}`)
_TEMPLATE_PORTS = (
    "etcd_port",
    "root_coord_port",
    "proxy_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)
# Milvus 2.3.5 stopped on SIGTERM in 15 s (our SIGKILL): its query node waits up to 30 s to hand its
# segments over; then a restart waited ~35 s for strong reads, until the killed run's etcd sessions
# (30 s leases) expired. Measured here (one start, stop, start, stop): stops 15.0 -> 1.1 s, the restart's
# start 34.8 -> 14.6 s. A lease of 10 s is renewed every few seconds, enough on a loaded machine.
SESSION_TTL = 10  # common.session.ttl: seconds a dead server's sessions hold back a restarted one
# Strong reads wait for the proxy's time tick: opening a store (7 settings reads) took 2.2 s at the default
# 200 ms, 1.55 s at 100 ms, 0.35 s at 50 ms; an idle server with 5 stores used 0.09, 0.13, 0.23 of a core.
TIME_TICK_MS = 50  # proxy.timeTickInterval
QUERY_NODE_STOP = 1  # queryNode.gracefulStopTimeout: seconds a stopping query node waits to hand over
_PORT_RANGE = (20000, 32000)  # below Linux's default ephemeral range (32768-60999)

# x86_64 system calls and seccomp constants (linux/seccomp.h, linux/filter.h)
_NR_BIND = 49
_NR_SECCOMP = 317
_NR_PIDFD_OPEN = 434
_NR_PIDFD_GETFD = 438
_SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
_SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
_SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102
_SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
_NOTIF = struct.Struct("=QIIiIQ6Q")  # struct seccomp_notif: id, pid, flags, seccomp_data
_NOTIF_RESP = struct.Struct("=QqiI")  # struct seccomp_notif_resp: id, val, error, flags

# Runs in the child before the server binary: installs the filter (every bind -> user
# notification), passes the listener fd to the parent over an inherited socket, asks for
# SIGKILL when the parent dies, then execs the server (the filter survives exec).
_WRAPPER = r"""
import ctypes, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
if libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0 or libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
    sys.exit(f"milvus wrapper: prctl failed: {os.strerror(ctypes.get_errno())}")
if os.getppid() != int(sys.argv[2]):
    sys.exit("milvus wrapper: parent already gone")
ld_abs, jeq, ret = 0x20, 0x15, 0x06
prog = [
    (ld_abs, 0, 0, 4),                  # A = seccomp_data.arch
    (jeq, 0, 4, 0xC000003E),            # not x86_64 -> allow
    (ld_abs, 0, 0, 0),                  # A = seccomp_data.nr
    (jeq, 1, 0, 49),                    # bind -> notify
    (jeq, 0, 1, 0x40000000 | 49),       # x32 bind -> notify, else allow
    (ret, 0, 0, 0x7FC00000),            # SECCOMP_RET_USER_NOTIF
    (ret, 0, 0, 0x7FFF0000),            # SECCOMP_RET_ALLOW
]
raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
buf = ctypes.create_string_buffer(raw, len(raw))
fprog = struct.pack("=H6xQ", len(prog), ctypes.addressof(buf))
fprog_buf = ctypes.create_string_buffer(fprog, len(fprog))
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 8
fd = libc.syscall(317, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, fprog_buf)
if fd < 0:
    sys.exit(f"milvus wrapper: seccomp listener failed: {os.strerror(ctypes.get_errno())}")
chan = socket.socket(fileno=int(sys.argv[1]))
socket.send_fds(chan, [b"L"], [fd])
chan.close()
os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


class MilvusServerError(RuntimeError):
    """The server could not be started, did not answer in time, or died."""


def platform_supported() -> str | None:
    """Why a Milvus server cannot run here, or None when it can.

    Returns:
        A one-line reason (not Linux x86_64, or the `milvus`/`pymilvus` packages missing), or
        None.
    """
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"the milvus package ships Linux x86_64 binaries only (this is {sys.platform} {platform.machine()})"
    try:
        import milvus  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install 'hashmem[milvus]')"
    return None


def _binaries() -> Path:
    """The server binary, extracted once from the wheel into a shared cache (locked)."""
    import milvus
    import platformdirs

    base = Path(os.environ.get("HASHMEM_MILVUS_CACHE") or platformdirs.user_cache_dir("hashmem"))
    base = base / f"milvus-{milvus.__version__}"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        milvus._initialize_data_files(str(base))  # skips files whose md5 stamp matches
    return base / "bin" / "milvus"


def _free_ports(n: int) -> list[int]:
    """`n` distinct ports free on 127.0.0.1 and on the wildcard address, outside the ephemeral range."""
    ports: list[int] = []
    held: list[socket.socket] = []
    rng = random.Random()
    try:
        while len(ports) < n:
            port = rng.randrange(*_PORT_RANGE)
            if port in ports:
                continue
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                sock.bind(("::", port))  # free on every address, IPv4 and IPv6
            except OSError:
                sock.close()
                continue
            held.append(sock)
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """The (address, port) pairs on which process `pid` has TCP sockets in LISTEN state.

    Read from `/proc/<pid>/fd` (socket inodes) and `/proc/<pid>/net/tcp{,6}`, so it needs no
    privileges beyond seeing the process.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for name, width in (("tcp", 4), ("tcp6", 16)):
        lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = TCP_LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found.append((str(ipaddress.ip_address(raw)), int(hex_port, 16)))
    return found


def _is_loopback(family: int, addr: bytes) -> bool:
    ip = ipaddress.ip_address(addr)
    if family == socket.AF_INET6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class _BindGuard(threading.Thread):
    """Answers the server's bind() notifications: loopback stays, anything else becomes loopback."""

    def __init__(self, notify_fd: int, pid: int) -> None:
        super().__init__(name=f"milvus-bind-guard-{pid}", daemon=True)
        self.fd, self.pid = notify_fd, pid
        self.rewritten: list[tuple[str, int]] = []  # (original address, port)
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long
        self._pidfd = self._libc.syscall(_NR_PIDFD_OPEN, pid, 0)
        if self._pidfd < 0:
            raise MilvusServerError(f"pidfd_open({pid}) failed: {os.strerror(ctypes.get_errno())}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        for fd in (self.fd, self._pidfd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        buf = ctypes.create_string_buffer(_NOTIF.size)
        while not self._stop_event.is_set():
            events = poller.poll(200)
            if not events:
                continue
            if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return  # the server exited
            ctypes.memset(buf, 0, _NOTIF.size)  # the kernel requires a zeroed buffer
            if self._libc.ioctl(self.fd, _SECCOMP_IOCTL_NOTIF_RECV, buf) != 0:
                if ctypes.get_errno() in (errno.EINTR, errno.ENOENT):
                    continue
                return
            nid, pid, _flags, _nr, _arch, _ip, *args = _NOTIF.unpack(buf.raw)
            try:
                resp = self._answer(nid, pid, args)
            except Exception as exc:  # never leave the server blocked in bind()
                self.errors.append(f"{type(exc).__name__}: {exc}")
                resp = _NOTIF_RESP.pack(nid, 0, -errno.EACCES, 0)
            out = ctypes.create_string_buffer(resp, len(resp))
            self._libc.ioctl(self.fd, _SECCOMP_IOCTL_NOTIF_SEND, out)

    def _answer(self, nid: int, pid: int, args: list[int]) -> bytes:
        fd, addr_ptr, addr_len = args[0], args[1], args[2]
        proceed = _NOTIF_RESP.pack(nid, 0, 0, _SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(addr_ptr)
            sockaddr = mem.read(min(addr_len, 128))
        nid_buf = ctypes.c_uint64(nid)
        if self._libc.ioctl(self.fd, _SECCOMP_IOCTL_NOTIF_ID_VALID, ctypes.byref(nid_buf)) != 0:
            return proceed  # the call is gone (thread killed); the answer is ignored
        family = int.from_bytes(sockaddr[:2], "little") if len(sockaddr) >= 2 else -1
        if family == socket.AF_INET and len(sockaddr) >= 8:
            port, addr = int.from_bytes(sockaddr[2:4], "big"), sockaddr[4:8]
        elif family == socket.AF_INET6 and len(sockaddr) >= 24:
            port, addr = int.from_bytes(sockaddr[2:4], "big"), sockaddr[8:24]
        else:
            return proceed  # unix sockets, netlink, ...
        if _is_loopback(family, addr):
            return proceed
        own = self._libc.syscall(_NR_PIDFD_GETFD, self._pidfd, fd, 0)
        if own < 0:
            raise OSError(ctypes.get_errno(), f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
        sock = socket.socket(fileno=own)
        try:
            if family == socket.AF_INET:
                target = ("127.0.0.1", port)
            elif sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                target = ("::1", port)
            else:
                target = ("::ffff:127.0.0.1", port)  # dual-stack socket: IPv4 loopback
            try:
                sock.bind(target)
            except OSError as exc:
                return _NOTIF_RESP.pack(nid, 0, -(exc.errno or errno.EACCES), 0)
        finally:
            sock.close()  # our duplicate only; the server's descriptor stays open and bound
        self.rewritten.append((str(ipaddress.ip_address(addr)), port))
        return _NOTIF_RESP.pack(nid, 0, 0, 0)


class MilvusServer:
    """A Milvus 2.3.5 standalone server on 127.0.0.1, started from the `milvus` package.

    Args:
        data_dir: directory for the server's configuration, data and logs (created; kept by
            `stop()` and reused by `restart()`).
        start_timeout: seconds `start()` waits for the server to answer a pymilvus call.
        stop_timeout: seconds `stop()` waits after SIGTERM before SIGKILL.

    Example:
        >>> with MilvusServer(tmp_path / "milvus") as server:  # doctest: +SKIP
        ...     Memory(server.uri + "/passages")
    """

    host = "127.0.0.1"

    def __init__(self, data_dir: str | os.PathLike, *, start_timeout: float = 240.0,
                 stop_timeout: float = 15.0) -> None:
        reason = platform_supported()
        if reason:
            raise MilvusServerError(f"cannot run a Milvus server: {reason}")
        self.data_dir = Path(data_dir).resolve()
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.log_file = self.data_dir / "logs" / "milvus.log"
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen | None = None
        self._guard: _BindGuard | None = None
        self._log = None

    # -- public surface ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The proxy's port (the one clients use); chosen at the first `start()`."""
        if "proxy_port" not in self.ports:
            raise MilvusServerError("the server has not been started yet")
        return self.ports["proxy_port"]

    @property
    def uri(self) -> str:
        """`milvus://127.0.0.1:PORT` (hashmem's store string without the collection)."""
        return f"milvus://{self.host}:{self.port}"

    @property
    def http_uri(self) -> str:
        """`http://127.0.0.1:PORT`, the form pymilvus's `MilvusClient(uri=...)` takes."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def rewritten_binds(self) -> list[tuple[str, int]]:
        """The (address, port) binds the server asked for that were moved to loopback."""
        return list(self._guard.rewritten) if self._guard else []

    def start(self) -> MilvusServer:
        """Start the server and wait until it answers pymilvus and has reloaded its collections.

        Ready means `list_collections` answers, no collection is in the `Loading` state, and
        every loaded collection answers a strong read (after a restart Milvus reloads the
        collections that were loaded before it and replays its log; until then reads of them,
        strong ones especially, time out).

        Returns:
            self.

        Raises:
            MilvusServerError: the process exited, or did not answer within `start_timeout`
                seconds (the message names the log file).
        """
        if self.running:
            return self
        exe = _binaries()
        if not self.ports:
            self.ports = dict(zip((*_TEMPLATE_PORTS, "etcd_peer_port", "metrics_port"),
                                  _free_ports(len(_TEMPLATE_PORTS) + 2), strict=True))
        self._write_config()
        env = dict(os.environ)
        env.update({
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(self.ports["metrics_port"]),
            "MILVUS_RUN_DIR": str(self.data_dir / "run"),
            "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(exe.parent), os.environ.get("LD_LIBRARY_PATH")])),
        })
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_file, "ab")
        self._log.write(f"--- hashmem MilvusServer start {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        self._log.flush()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WRAPPER, str(child_end.fileno()), str(os.getpid()),
                 str(exe), "run", "standalone"],
                cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, pass_fds=(child_end.fileno(),), start_new_session=True)
            child_end.close()
            parent_end.settimeout(30)
            try:
                _msg, fds, _flags, _addr = socket.recv_fds(parent_end, 16, 1)
            except (OSError, TimeoutError) as exc:
                raise MilvusServerError(
                    f"the Milvus launcher wrapper failed ({exc}): {self._last_log_line()}; see {self.log_file}") from exc
            if not fds:
                raise MilvusServerError(
                    f"the Milvus launcher wrapper failed: {self._last_log_line()}; see {self.log_file}")
            self._guard = _BindGuard(fds[0], self._proc.pid)
            self._guard.start()
        except BaseException:
            parent_end.close()
            self._kill_tree(0)
            raise
        parent_end.close()
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, wait: float | None = None) -> None:
        """SIGTERM, wait up to `wait` seconds (default `stop_timeout`), then SIGKILL; also kills any child
        process left. `wait=0` kills at once: for a server whose data is thrown away."""
        if self._proc is not None:
            self._kill_tree(self.stop_timeout if wait is None else wait)
        if self._guard is not None:
            self._guard.stop()
            self._guard = None
        if self._log is not None:
            self._log.close()
            self._log = None
        _LIVE.discard(self)

    def restart(self) -> MilvusServer:
        """Stop and start again on the same ports with the same data."""
        self.stop()
        return self.start()

    def drop_store(self, name: str) -> None:
        """Drop a hashmem store's collections (``name`` and its settings and lexicon), if the server runs."""
        if not self.running:
            return
        from pymilvus import MilvusClient

        c = MilvusClient(uri=self.http_uri)
        try:
            for coll in (name, f"{name}__settings", f"{name}__lexicon"):
                if c.has_collection(coll):
                    c.drop_collection(coll)
        finally:
            c.close()

    def __enter__(self) -> MilvusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        port = self.ports.get("proxy_port", "?")
        return f"MilvusServer({self.host}:{port}, {state}, data {self.data_dir})"

    # -- internals --------------------------------------------------------------------

    def _write_config(self) -> None:
        import milvus

        configs = self.data_dir / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        etcd_yaml = configs / "etcd.yaml"
        client = f"http://127.0.0.1:{self.ports['etcd_port']}"
        peer = f"http://127.0.0.1:{self.ports['etcd_peer_port']}"
        etcd_yaml.write_text(
            "# the embedded etcd: loopback only, on this server's own ports\n"
            f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: default={peer}\n")
        # the package's template engine renders configs/milvus.yaml; its own port probing
        # (`resolve()`, a bind without SO_REUSEADDR) is skipped: it fails on a restart while
        # the previous run's connections sit in TIME_WAIT
        config = milvus.MilvusServerConfig(data_dir=str(self.data_dir))
        for key in _TEMPLATE_PORTS:
            config.configurable_items[key][1] = self.ports[key]
        for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
            config.set(f"{component}.ip", "127.0.0.1")  # the advertised address
        config.set("common.session.ttl", SESSION_TTL)
        config.set("proxy.timeTickInterval", TIME_TICK_MS)
        config.resolve_storage()
        unresolved = [key for key, (_, value) in config.configurable_items.items() if value is None]
        if unresolved:
            raise MilvusServerError(f"milvus.yaml template items left unset: {unresolved}")
        config.write_config()
        yaml = configs / "milvus.yaml"
        text = yaml.read_text()
        if "\netcd:\n" not in text:
            raise MilvusServerError(f"unexpected milvus.yaml template (no etcd section) in {yaml}")
        text = text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_yaml}\n", 1)
        if "\nqueryNode:\n" not in text:
            raise MilvusServerError(f"unexpected milvus.yaml template (no queryNode section) in {yaml}")
        text = text.replace("\nqueryNode:\n", f"\nqueryNode:\n  gracefulStopTimeout: {QUERY_NODE_STOP}\n", 1)
        yaml.write_text(text)

    @staticmethod
    def _still_loading(client) -> list[str]:
        """Collections the server is (re)loading: after a restart, the ones loaded before it."""
        from pymilvus.client.types import LoadState

        loading = []
        for name in client.list_collections():
            try:
                state = client.get_load_state(name)["state"]
            except Exception:  # dropped meanwhile
                continue
            if state == LoadState.Loading:
                loading.append(name)
            elif state == LoadState.Loaded:
                try:  # a strong read answers only once the collection's channels have caught up
                    client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong",
                                 timeout=10)
                except Exception:
                    loading.append(name)
        return loading

    def _last_log_line(self) -> str:
        if self._log is not None:
            self._log.flush()
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=2)  # let a failing wrapper finish writing
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "empty log"

    def _wait_ready(self) -> None:
        from pymilvus import MilvusClient

        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise MilvusServerError(
                    f"Milvus exited with code {self._proc.returncode} while starting; see {self.log_file}")
            try:
                left = max(1.0, min(10.0, deadline - time.monotonic()))
                client = MilvusClient(uri=self.http_uri, timeout=left)
                try:
                    loading = self._still_loading(client)
                    if not loading:
                        return
                    last = f"collections still loading after the restart: {', '.join(loading)}"
                finally:
                    client.close()
            except Exception as exc:  # not up yet: connection refused, not ready, ...
                last = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            time.sleep(0.5)
        raise MilvusServerError(
            f"Milvus did not answer on {self.http_uri} within {self.start_timeout:.0f} s "
            f"(last error: {last}); see {self.log_file}")

    def _kill_tree(self, wait: float) -> None:
        import psutil

        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(children, timeout=10)
        # the process group (start_new_session): anything that escaped the tree walk
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


_LIVE: set[MilvusServer] = set()


def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all)


def tree_rss(pid: int) -> int:
    """Resident set size in bytes of process `pid` and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for proc in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def main() -> None:  # pragma: no cover - a manual entry point
    """`python tests/milvus_server.py DATA_DIR`: run a loopback server until Ctrl-C."""
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "milvus-data")
    with MilvusServer(data) as server:
        sys.stdout.write(f"{server.uri} (pid {server.pid}, log {server.log_file}); Ctrl-C stops\n")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(1)


if __name__ == "__main__":  # pragma: no cover
    main()
