# A/B of convert settings against cp -r, one run, warm cache: python3 bench/scripts/ab_kernel16.py SRC WORK [KERNEL[:THREADS]]...
# (KERNEL: table or vector, the 16-bit path; default: both). Medians of 3 interleaved runs, whole-process wall.
import os, subprocess, sys, time, statistics, shutil
src, work = sys.argv[1], sys.argv[2]
res = {}
def run(key, cmd, env=None):
    shutil.rmtree(work, ignore_errors=True)
    t = time.time(); subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res.setdefault(key, []).append(time.time() - t)
for i in range(3):
    run("cp -r", ["cp", "-r", src, work])
    for k in (sys.argv[3:] or ["table", "vector"]):
        kernel, _, threads = k.partition(":")
        run("fp8q nosync " + k, ["./fp8q", "convert", "--quiet", src, work] + (["--threads", threads] if threads else []),
            dict(os.environ, FP8Q_JAVA_OPTS=f"-Dfp8q.fsync=false -Dfp8q.kernel16={kernel}"))
cp = statistics.median(res["cp -r"])
for k, v in res.items():
    m = statistics.median(v)
    print(f"{k:22} median {m:.2f} s ({', '.join(f'{x:.2f}' for x in v)})  {m / cp:.2f}x cp")
