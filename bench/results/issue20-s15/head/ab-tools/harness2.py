"""Keep a moto server with the history store loaded; write env for warm runs; serve forever."""
import json, os, sys, time, uuid
from pathlib import Path
sys.path.insert(0, "/tmp/head/before")
from bench.history_scale import BUCKET, Params, cached_build, load_into_moto, bundle, DEFAULT_CACHE
from bench.lineage_scale import PROJECT, isolate_environment
from artifactstore.testing.servers import moto_s3_server

isolate_environment()
root = Path(os.environ["HROOT"]); built = json.loads((root / "build.json").read_text())
with moto_s3_server(bucket=BUCKET) as server:
    print(bundle(root / "store"), flush=True)
    prefix = f"history-{uuid.uuid4().hex[:8]}"
    print(load_into_moto(root / "store", BUCKET, prefix, with_packs=False, with_bundles=True), flush=True)
    url = f"s3://{BUCKET}/{prefix}"
    env = {"AWS_ENDPOINT_URL": server.endpoint_url,
           "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
           "AWS_DEFAULT_REGION": server.region}
    Path("/tmp/head/env" + os.environ["HTAG"] + ".json").write_text(json.dumps({"env": env, "url": url, "project": PROJECT,
                                                      "deep_ref": built["deep_ref"],
                                                      "home": os.environ.get("HOME")}))
    print("ready", flush=True)
    # a tiny control: count requests on demand
    ctl = Path("/tmp/head/ctl" + os.environ["HTAG"] + "")
    while True:
        time.sleep(0.05)
        if ctl.exists():
            cmd = ctl.read_text().strip(); ctl.unlink()
            if cmd == "reset":
                server.reset_count()
            elif cmd == "count":
                Path("/tmp/head/count" + os.environ["HTAG"] + "").write_text(json.dumps(server.requests))
            elif cmd == "stop":
                break
