#!/usr/bin/env python3
"""Function-level difference between two `bench/profile/run.sh callgrind` directories for one
step: instructions per delivery of each function (self cost, or inclusive with --inclusive),
largest differences first. Used for what metrics cost (docs/OPERATIONS.md): run the same build
with metrics off and on and compare.

usage: diff.py A_DIR B_DIR STEP [--inclusive] [--top N]
"""
import collections, glob, os, re, subprocess, sys
off, on, step = sys.argv[1], sys.argv[2], sys.argv[3]
incl = "--inclusive" in sys.argv
top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 40
def load(d):
    f = sorted(glob.glob(os.path.join(d, f"callgrind.out.*.{step}")))[0]
    delivered = int(open(os.path.join(d, f"counts.{step}")).read().split()[0])
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", f"--inclusive={'yes' if incl else 'no'}", f],
                         check=True, capture_output=True, text=True).stdout
    c = collections.Counter()
    for line in ann.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(?:\S*?):(.*?)(?:\s+\[.*\])?$", line)
        if m:
            c[m.group(2).strip()] += int(m.group(1).replace(",", ""))
    return c, delivered
a, da = load(off)
b, db = load(on)
keys = set(a) | set(b)
rows = sorted(((b[k] / db - a[k] / da, a[k] / da, b[k] / db, k) for k in keys), key=lambda r: -abs(r[0]))
print(f"deliveries A {da}, B {db}; {'inclusive' if incl else 'self'} Ir per delivery")
print(f"{'B - A':>9} {'A':>9} {'B':>9}  function")
for d, x, y, k in rows[:top]:
    print(f"{d:9.1f} {x:9.1f} {y:9.1f}  {k[:170]}")
