# A/B of convert settings against cp -r on one machine, warm page cache, in one run:
#   python3 bench/scripts/ab_convert.py SRC WORK [RUNS] NAME=JAVA_OPTS[@THREADS]...
# e.g. default= nolock=-Dfp8q.lock=false eight=@8. Every fp8q run adds -Dfp8q.fsync=false.
# Runs interleave; each starts after a sync (no writeback of the previous one pending). Prints medians of
# whole-process wall time and of the child's user and system CPU seconds.
import os, resource, shutil, statistics, subprocess, sys, time
src, work = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
runs = int(args.pop(0)) if args and args[0].isdigit() else 3
variants = [a.partition("=") for a in args] or [("default", "=", "")]
res = {}
def run(key, cmd, env=None):
    shutil.rmtree(work, ignore_errors=True)
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.time()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res.setdefault(key, []).append((wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
subprocess.run(["cat"] + [os.path.join(src, f) for f in os.listdir(src)], stdout=subprocess.DEVNULL)  # warm the cache
for i in range(runs):
    run("cp -r", ["cp", "-r", src, work])
    for name, _, spec in variants:
        opts, _, threads = spec.partition("@")
        run(name, ["./fp8q", "convert", "--quiet", src, work] + (["--threads", threads] if threads else []),
            dict(os.environ, FP8Q_JAVA_OPTS=f"-Dfp8q.fsync=false {opts}"))
cp = statistics.median(w for w, _, _ in res["cp -r"])
print(f"source {src}, {runs} interleaved runs, medians")
for k, v in res.items():
    m = statistics.median(w for w, _, _ in v)
    print(f"{k:12} wall {m:.2f} s ({', '.join(f'{w:.2f}' for w, _, _ in v)})  user {statistics.median(u for _, u, _ in v):.2f}"
          f"  sys {statistics.median(s for _, _, s in v):.2f}  {m / cp:.2f}x cp")
