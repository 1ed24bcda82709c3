#!/usr/bin/env python3
"""Per-target phases of a convert --lora run with -Dfp8q.trace=true (stderr on stdin), and their sums."""
import re, sys
t = {}
for line in sys.stdin:
    m = re.match(r"fp8q-trace\s+([\d.]+) s\s+(.*): (merge|factors|buffer|merged|quantized)$", line.strip())
    if m:
        t.setdefault(m.group(2), {})[m.group(3)] = float(m.group(1))
rows = sorted(t.items(), key=lambda kv: kv[1].get("merge", 0))
phases = [("factors", "merge"), ("buffer", "factors"), ("merged", "buffer"), ("quantized", "merged")]
sums = {}
for i, (name, v) in enumerate(rows):
    d = {a: v[a] - v[b] for a, b in phases if a in v and b in v}
    for k, x in d.items():
        sums[k] = sums.get(k, 0) + x
    if i < 6 or i >= len(rows) - 4:
        print(f"{v['merge']:7.3f} " + " ".join(f"{k} {x:.3f}" for k, x in d.items()) + f"  {name}")
print("sums over targets: " + " ".join(f"{k} {x:.2f}" for k, x in sums.items()))
done = sorted(v["quantized"] for v in t.values() if "quantized" in v)
if done:
    print("targets quantized by second: " + " ".join(f"{s}s:{sum(1 for x in done if x < s)}" for s in range(1, int(done[-1]) + 2)))
