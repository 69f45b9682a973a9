"""The Milvus test server launcher (tests/milvus_server.py): loopback only, restart, clean stop."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from milvus_server import MilvusServer, MilvusServerError, listening_addresses

psutil = pytest.importorskip("psutil", reason="psutil comes with the milvus extra")


def _client(server: MilvusServer):
    from pymilvus import MilvusClient

    return MilvusClient(uri=server.http_uri, timeout=60)


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_listens_on_loopback_only(milvus_server):
    """Every listening socket of the server (gRPC, HTTP, metrics, embedded etcd) is loopback."""
    assert milvus_server.uri == f"milvus://127.0.0.1:{milvus_server.port}"
    found = listening_addresses(milvus_server.pid)
    ports = {port for _, port in found}
    assert milvus_server.port in ports
    assert milvus_server.ports["etcd_port"] in ports and milvus_server.ports["metrics_port"] in ports
    assert len(found) >= 8, found  # the standalone's components each listen
    exposed = [(addr, port) for addr, port in found if not _is_loopback(addr)]
    assert exposed == [], f"Milvus listens beyond loopback: {exposed}"
    # the server did ask for the wildcard address: the guard moved those binds to loopback
    assert {addr for addr, _ in milvus_server.rewritten_binds} <= {"::", "0.0.0.0"}
    assert milvus_server.rewritten_binds
    # psutil, an independent reading, agrees
    conns = psutil.Process(milvus_server.pid).net_connections(kind="inet")
    listening = [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening and all(_is_loopback(a.ip) for a in listening), listening


def test_restart_keeps_an_unflushed_row(milvus_server):
    """A row acknowledged by insert (not flushed) is there after a restart, on the same URI."""
    from pymilvus import DataType

    rng = np.random.default_rng(0)
    code = np.packbits(rng.integers(0, 2, 256, dtype=np.uint8)).tobytes()
    client = _client(milvus_server)
    name = "launcher_restart"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("code", DataType.BINARY_VECTOR, dim=256)
    schema.add_field("text", DataType.VARCHAR, max_length=64)
    index = client.prepare_index_params()
    index.add_index(field_name="code", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection(name, schema=schema, index_params=index)
    assert client.insert(name, [{"id": 7, "code": code, "text": "kept across restart"}])["insert_count"] == 1
    client.close()
    uri = milvus_server.uri

    milvus_server.restart()

    assert milvus_server.uri == uri and milvus_server.running
    client = _client(milvus_server)
    try:
        client.load_collection(name)
        rows = client.query(name, filter="id == 7", output_fields=["text", "code"],
                            consistency_level="Strong")
        assert [r["text"] for r in rows] == ["kept across restart"]
        hits = client.search(name, data=[code], limit=1, anns_field="code",
                             search_params={"metric_type": "HAMMING"}, consistency_level="Strong")
        assert hits[0][0]["id"] == 7 and hits[0][0]["distance"] == 0
        client.drop_collection(name)
    finally:
        client.close()


def test_second_server_at_once_and_stop_leaves_no_process(milvus_server, tmp_path):
    """A second instance runs beside the session's on other ports; stop() leaves nothing behind."""
    second = MilvusServer(tmp_path / "second")
    with second:
        assert second.running and milvus_server.running
        assert not set(second.ports.values()) & set(milvus_server.ports.values())
        client = _client(second)
        assert client.list_collections() == []  # its own data, not the session server's
        client.close()
        pid = second.pid
        tree = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    assert not second.running and second.pid is None
    alive = [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    strays = []
    for proc in psutil.process_iter(["cwd", "pid"]):
        if proc.info["cwd"] == str(second.data_dir):
            strays.append(proc.info["pid"])
    assert strays == [], f"processes left in {second.data_dir}: {strays}"
    assert second.log_file.is_file() and second.log_file.stat().st_size > 0


def test_start_timeout_names_the_log_file(milvus_server, tmp_path):
    """A server that does not answer in time is stopped, and the error says where to look.

    (Requests the session server only for its skip-or-fail policy on platforms without one.)
    """
    server = MilvusServer(tmp_path / "slow", start_timeout=0.5)
    with pytest.raises(MilvusServerError, match=r"did not answer .* see .*milvus\.log"):
        server.start()
    assert not server.running


def test_help_does_not_import_the_milvus_extra():
    """The `milvus` extra (pymilvus, grpc, the server package) stays out of `hashmem --help`."""
    import subprocess
    import sys

    code = ("import sys; from hashmem.cli.main import main; sys.argv=['hashmem','--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pymilvus', 'milvus', 'grpc', 'psutil', 'pandas') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage: hashmem" in out
    assert "HEAVY []" in out


def test_a_platform_without_seccomp_notifications_fails_with_the_reason(milvus_server, tmp_path, monkeypatch):
    """If the bind guard cannot be installed the server never starts, and the error says why."""
    import milvus_server as launcher

    monkeypatch.setattr(launcher, "_WRAPPER", "import sys\n"
                        "sys.exit('milvus wrapper: seccomp listener failed: Function not implemented')")
    server = MilvusServer(tmp_path / "noseccomp")
    with pytest.raises(MilvusServerError, match=r"wrapper failed.*seccomp listener failed.*see .*milvus\.log"):
        server.start()
    assert not server.running
