"""`nearest collection export` into a server speaking Qdrant's REST API, and `import` back from
it: every point identical (our own server stands in for a Qdrant cluster)."""
import array
import json
import os
import random
import subprocess
import tempfile
import uuid

from qdrant_client import models

from conftest import BINARY


def cli(*args):
    return subprocess.run([BINARY, *args], check=True, capture_output=True, text=True).stdout


def float32(vector):
    """The vector as float32 values (what the store keeps), as Python floats."""
    return [float(x) for x in array.array("f", vector)]


def everything(client, name):
    points, offset = [], None
    while True:
        page, offset = client.scroll(name, limit=100, offset=offset, with_vectors=True)
        points += page
        if offset is None:
            return {p.id: (float32(p.vector), p.payload) for p in points}


def test_export_then_import_round_trip(client, server):
    rng = random.Random(3)
    points = {}
    for i in range(700):
        pid = i if i % 3 else str(uuid.UUID(int=rng.getrandbits(128)))
        points[pid] = ([rng.uniform(-2, 2) for _ in range(8)],
                       {"i": i, "nested": {"tags": ["a", "b"][: i % 3], "ok": i % 2 == 0}, "none": None})
    with tempfile.TemporaryDirectory() as local:
        lines = os.path.join(local, "points.jsonl")
        with open(lines, "w") as f:
            for pid, (vector, payload) in points.items():
                f.write(json.dumps({"id": pid, "vector": vector, "payload": payload}) + "\n")
        cli("collection", "create", "src", "--dimensions", "8", "--metric", "l2", "--root", local)
        cli("collection", "upsert", "src", "--input", lines, "--root", local)
        out = cli("collection", "export", "src", "--to", server.url, "--collection", "remote", "--batch", "64", "--root", local, "--json")
        assert json.loads(out)["exported"] == 700
        check_round_trip(client, server, points)
        # Exporting again into the existing collection is allowed (same vectors); into one with
        # other vectors it is refused.
        again = subprocess.run([BINARY, "collection", "export", "src", "--to", server.url, "--collection", "remote",
                                "--root", local], capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        client.create_collection("other", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
        refused = subprocess.run([BINARY, "collection", "export", "src", "--to", server.url, "--collection", "other",
                                  "--root", local], capture_output=True, text=True)
        assert refused.returncode == 1 and "other vectors" in refused.stderr
    assert client.count("remote").count == 700
    unreachable = subprocess.run([BINARY, "collection", "import", "x", "--from", "http://127.0.0.1:9", "--root", server.root],
                                 capture_output=True, text=True)
    assert unreachable.returncode == 1 and "127.0.0.1:9" in unreachable.stderr
    for bad in (["--from", "ftp://host/x"], ["--from", server.url, "--batch", "0"], ["--from", server.url, "--collection", "missing"]):
        refused = subprocess.run([BINARY, "collection", "import", "y", *bad, "--root", server.root], capture_output=True, text=True)
        assert refused.returncode != 0 and refused.stderr.strip(), bad
    assert not os.path.exists(os.path.join(server.root, "y")), "a refused import leaves no collection behind"


def check_round_trip(client, server, points):
    info = client.get_collection("remote")
    assert info.config.params.vectors.size == 8 and info.config.params.vectors.distance == models.Distance.EUCLID
    remote = everything(client, "remote")
    # Floats travel as their shortest decimal form: read as float32 they come back bit for bit.
    assert remote == {pid: (float32(vector), payload) for pid, (vector, payload) in points.items()}
    # Imported into the server's own root (a new collection it then serves): the same again.
    out = cli("collection", "import", "back", "--from", server.url, "--collection", "remote", "--batch", "50",
              "--root", server.root, "--json")
    assert json.loads(out)["imported"] == 700
    assert everything(client, "back") == remote
    assert client.query_points("back", query=remote[4][0], limit=1).points[0].id == 4
