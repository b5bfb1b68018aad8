#!/usr/bin/env python3
"""Parses the manifests (PyYAML) and checks what ties them together: the serve container's
memory request/limit against --memory, the Indexed Job's shard count against its completions,
the probes' command, the merge's shard list, the shared claim. No cluster needed."""
import re
import sys
from pathlib import Path

import yaml

here = Path(__file__).resolve().parent
docs = {}
for f in sorted(here.glob("*.yaml")):
    for d in yaml.safe_load_all(f.read_text()):
        docs[(d["kind"], d["metadata"]["name"])] = d


def size(text):
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|K|M|G)?", str(text))
    unit = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 2**10, "M": 2**20, "G": 2**30, None: 1}
    return float(m.group(1)) * unit[m.group(2)]


serve = docs[("Deployment", "bunet-serve")]["spec"]["template"]["spec"]["containers"][0]
args = dict(a.lstrip("-").split("=", 1) for a in serve["args"] if "=" in a)
memory = size(args["memory"])
res = serve["resources"]
assert size(res["requests"]["memory"]) >= memory, "request below --memory"
assert size(res["limits"]["memory"]) >= size(res["requests"]["memory"])
assert serve["readinessProbe"]["exec"]["command"][:2] == ["bunet", "probe"]
svc = docs[("Service", "bunet-serve")]["spec"]
assert svc["selector"] == docs[("Deployment", "bunet-serve")]["spec"]["selector"]["matchLabels"]

job = docs[("Job", "bunet-segment")]["spec"]
assert job["completionMode"] == "Indexed"
env = {e["name"]: e["value"] for e in job["template"]["spec"]["containers"][0]["env"]}
assert int(env["SHARDS"]) == job["completions"], "SHARDS must equal completions"
assert env["SERVER"].split(":")[0] == "bunet-serve"
merge = docs[("Job", "bunet-merge")]["spec"]["template"]["spec"]["containers"][0]["args"][0]
assert len(re.findall(r"/data/out/shard-\d+", merge)) == job["completions"]
for name in ("bunet-segment", "bunet-merge"):
    vols = docs[("Job", name)]["spec"]["template"]["spec"]["volumes"]
    assert vols[0]["persistentVolumeClaim"]["claimName"] == "bunet-data"
assert ("PersistentVolumeClaim", "bunet-data") in docs
print(f"ok: {len(docs)} objects; serve --memory {args['memory']} x --max-sessions "
      f"{args['max-sessions']}, request {res['requests']['memory']}, limit {res['limits']['memory']}; "
      f"{job['completions']} shards")
sys.exit(0)
