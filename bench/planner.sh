#!/usr/bin/env bash
# The planner's predicted step time against the measured one, for several meshes of four
# single-core PoCL devices (the `basic` driver), model 784,512,512,512,10 at batch 256.
#   bench/planner.sh [BUILD_DIR]
set -euo pipefail
B="${1:-build}"
export POCL_DEVICES="basic basic basic basic"
model=784,512,512,512,10
batch=256
"$B/clpar-devices" --plan --model $model --batch $batch --json --top 64 >/tmp/clpar-plan.json
python3 - "$B" $model $batch <<'PY'
import json, re, subprocess, sys
build, model, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
plans = json.load(open("/tmp/clpar-plan.json"))["plans"]
print(f"{'mesh':>14} {'predicted ms':>13} {'measured ms':>12} {'measured/predicted':>19}")
for p in plans:
    args = p["command"].split()[1:]
    out = subprocess.run([f"{build}/clpar-train", *args, "--data", "fashion-mnist", "--steps", "20",
                          "--quiet"], capture_output=True, text=True).stdout
    m = re.search(r"\(([0-9.]+) samples/s\)", out)
    if not m:
        print(p["command"], "failed:", out)
        continue
    measured = batch / float(m.group(1)) * 1e3
    mesh = f"{p['dp']}x{p['pp']}x{p['tp']}"
    print(f"{mesh:>14} {p['step_ms']:13.1f} {measured:12.1f} {measured / p['step_ms']:19.2f}")
PY
