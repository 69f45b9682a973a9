"""API keys: made, listed, revoked; stored only as SHA-256 digests; through Memory and the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hashmem.cli.main import cli
from hashmem.memory import ConfigError, Memory, RecordNotFoundError
from hashmem.memory import keys as keylib


def test_tokens_are_random_and_only_digests_are_stored(tmp_path):
    path = tmp_path / "k.db"
    with Memory(path) as mem:
        assert mem.keys() == [] and mem.key_for("hm_anything") is None
        t1 = mem.add_key("ana", {"user:ana": "write", "shared": "read"})
        t2 = mem.add_key("ben", {"user:ben": "write"})
        assert t1 != t2 and t1.startswith("hm_") and len(t1) > 40
        k = mem.key_for(t1)
        assert k.name == "ana" and k.grants == {"user:ana": "write", "shared": "read"} and k.active
        assert k.digest == keylib.digest(t1)
        assert mem.key_for(t1 + "x") is None and mem.key_for("") is None
        mem.revoke_key("ana")
        assert not mem.key_for(t1).active and mem.key_for(t2).active
        assert [(x.name, x.active) for x in mem.keys()] == [("ana", False), ("ben", True)]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert t1.encode() not in raw and t2.encode() not in raw
    assert keylib.digest(t2).encode() in raw


@pytest.mark.parametrize("name,grants,match", [
    ("", {"a": "read"}, "key name"),
    ("has space", {"a": "read"}, "key name"),
    ("ok", {}, "at least one"),
    ("ok", {"a": "admin"}, "'read' or 'write'"),
    ("ok", {" ": "read"}, "non-empty"),
])
def test_bad_keys_are_refused_and_nothing_stored(tmp_path, name, grants, match):
    with Memory(tmp_path / "k.db") as mem:
        with pytest.raises(ConfigError, match=match):
            mem.add_key(name, grants)
        assert mem.keys() == []


def test_duplicate_name_and_unknown_revoke(tmp_path):
    with Memory(tmp_path / "k.db") as mem:
        with pytest.raises(RecordNotFoundError, match="no valid key"):
            mem.revoke_key("nobody")
        mem.add_key("ana", {"a": "read"})
        with pytest.raises(ConfigError, match="exists"):
            mem.add_key("ana", {"b": "read"})
        assert len(mem.keys()) == 1


def test_cli_keys(tmp_path):
    store = str(tmp_path / "k.db")
    run = CliRunner().invoke
    r = run(cli, ["--store", store, "keys", "add", "ana", "--ns", "user:ana=write", "--ns", "shared", "--json"],
            catch_exceptions=False)
    assert r.exit_code == 0, r.output
    made = json.loads(r.output)
    assert made["grants"] == {"user:ana": "write", "shared": "read"} and made["token"].startswith("hm_")
    listed = json.loads(run(cli, ["--store", store, "keys", "list", "--json"]).output)
    assert [(k["name"], k["revoked"]) for k in listed] == [("ana", None)] and "token" not in listed[0]
    assert run(cli, ["--store", store, "keys", "revoke", "ana"]).exit_code == 0
    assert "revoked" in run(cli, ["--store", store, "keys", "list"]).output
    r = run(cli, ["--store", store, "keys", "revoke", "ana"])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "no valid key" in r.output
    r = run(cli, ["--store", store, "keys", "add", "bad", "--ns", "x=admin"])
    assert r.exit_code == 2 and "NAMESPACE=read|write" in r.output
