#!/usr/bin/env python3
"""Writes the MiniLM set as collection input: JSON Lines points with real payloads.

Each line is {"id": i, "vector": [...384 floats...], "payload": {"package": name,
"initial": first letter, "name_length": len(name), "lib": name starts with "lib"}}, where name
is the Debian package whose description row i embeds (base_names.txt.gz). Also writes the
payloads alone (one object per line) for `upsert --vectors base.fvecs --payloads`.

    python3 make_points.py ../../../shared/data/debian-minilm-384-angular OUT_DIR [--limit N]
"""
import argparse, gzip, json, os, struct


def read_fvecs(path, limit):
    with open(path, "rb") as f:
        data = f.read()
    dim = struct.unpack_from("<i", data, 0)[0]
    row_bytes = 4 + 4 * dim
    rows = len(data) // row_bytes
    if limit:
        rows = min(rows, limit)
    for i in range(rows):
        yield struct.unpack_from(f"<{dim}f", data, i * row_bytes + 4)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with gzip.open(os.path.join(args.dataset, "base_names.txt.gz"), "rt") as f:
        names = [line.strip() for line in f]
    points = open(os.path.join(args.out, "points.jsonl"), "w")
    payloads = open(os.path.join(args.out, "payloads.jsonl"), "w")
    count = 0
    for i, vector in enumerate(read_fvecs(os.path.join(args.dataset, "base.fvecs"), args.limit)):
        name = names[i]
        payload = {"package": name, "initial": name[0], "name_length": len(name), "lib": name.startswith("lib")}
        text = json.dumps(payload, separators=(",", ":"))
        points.write('{"id":%d,"vector":[%s],"payload":%s}\n' % (i, ",".join("%.7g" % x for x in vector), text))
        payloads.write(text + "\n")
        count += 1
    print(f"{count} points in {args.out}/points.jsonl and payloads.jsonl")


if __name__ == "__main__":
    main()
