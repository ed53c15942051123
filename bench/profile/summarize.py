#!/usr/bin/env python3
"""Per-delivery counts from a `bench/profile/run.sh` directory: instructions (callgrind, user
space of the server process only), allocator calls, memcpy instructions, syscalls (strace -c),
context switches, each divided by the step's deliveries; and where the instructions go, by
crate/module (self cost).

usage: summarize.py DIR [--top N]
"""
import collections
import glob
import os
import re
import subprocess
import sys

ALLOC = {"malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign"}

# (label, regex on the demangled function name), first match wins.
GROUPS = [
    ("allocator (malloc/free)", r"^(_int_|malloc|free|realloc|calloc|cfree|tcache|unlink_chunk|__libc_(malloc|free|calloc|realloc)|_int_free|malloc_consolidate|posix_memalign|aligned_alloc|memalign)"),
    ("memcpy/memmove/memset", r"^(__)?mem(cpy|move|set|cmp)|^__memcpy|^__memmove|^__memset|^__memcmp"),
    ("kernel entry (syscall stubs, libc)", r"^(__libc_|__GI_|epoll|syscall|__syscall|send|recv|write|read|futex|__lll|pthread|__pthread|clock_gettime|__clock_gettime|__vdso)"),
    ("serde_json", r"serde_json::|<serde_json::"),
    ("serde (derive code)", r"serde::|<serde::|_::<impl serde::"),
    ("tungstenite (frames, masking, buffers)", r"tungstenite::"),
    ("axum", r"axum::|axum_core::"),
    ("hyper / http", r"hyper::|hyper_util::|http::"),
    ("redis client", r"redis::|combine::"),
    ("tokio: scheduler, wakers, I/O driver", r"tokio::runtime|tokio::loom|tokio::util|tokio::park|tokio::task"),
    ("tokio: sync (Notify, mpsc, RwLock)", r"tokio::sync|tokio_util::"),
    ("tokio: timers", r"tokio::time"),
    ("tokio: net", r"tokio::net|tokio::io|mio::"),
    ("bytes", r"bytes::"),
    ("hashing (SipHash, HashMap)", r"core::hash|std::hash|hashbrown::|<std::collections::hash|RandomState|sip::"),
    ("governor (rate limits)", r"governor::|nonzero_ext|quanta::|dashmap::"),
    ("futures", r"futures_util::|futures_core::|futures_channel::"),
    ("chat_server", r"chat_server::"),
    ("chat_bench::floor", r"chat_bench::"),
    ("protocol", r"protocol::"),
    ("std/core/alloc (fmt, strings, vec)", r"^(core::|alloc::|std::|<alloc::|<core::|<std::)"),
]


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def callgrind_file(d, n):
    files = sorted(glob.glob(os.path.join(d, f"callgrind.out.*.{n}")))
    return files[0] if files else None


def parse_callgrind(path):
    """Total Ir, allocator calls, and self Ir per function name."""
    names = {}
    total = 0
    alloc_calls = collections.Counter()
    cur_cfn = None
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = name
            if kind == "cfn":
                cur_cfn = names.get(ident, "")
            continue
        if line.startswith("calls="):
            cnt = int(line.split("=")[1].split()[0])
            base = cur_cfn.split("'")[0] if cur_cfn else ""
            if base in ALLOC:
                alloc_calls[base] += cnt
            continue
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    ann = sh("callgrind_annotate", "--threshold=100", "--inclusive=no", path)
    self_ir = collections.Counter()
    for line in ann.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(?:\S*?):(.*?)(?:\s+\[.*\])?$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        fn = m.group(2).strip()
        self_ir[fn] += ir
    return total, alloc_calls, self_ir


def group(fn):
    for label, rx in GROUPS:
        if re.search(rx, fn):
            return label
    return "other"


def parse_strace(path):
    calls = {}
    for line in open(path):
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            try:
                calls[parts[-1]] = int(parts[3])
            except ValueError:
                pass
    return calls


def main():
    d = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    steps = int(open(os.path.join(d, "steps")).read())
    for n in range(1, steps + 1):
        delivered, acked = map(int, open(os.path.join(d, f"counts.{n}")).read().split())
        ctx = int(open(os.path.join(d, f"ctx.{n}")).read())
        per = max(delivered, 1)
        print(f"== step {n}: {delivered} deliveries, {acked} messages acknowledged")
        print(f"context switches (server threads): {ctx} = {ctx / per:.3f} per delivery")
        cg = callgrind_file(d, n)
        if cg:
            total, alloc, self_ir = parse_callgrind(cg)
            print(f"instructions (user space): {total:,} = {total / per:,.0f} per delivery")
            mallocs = alloc["malloc"] + alloc["calloc"] + alloc["realloc"] + alloc["posix_memalign"] + alloc["aligned_alloc"]
            print(f"allocations (malloc+calloc+realloc): {mallocs:,} = {mallocs / per:.2f} per delivery; free {alloc['free']:,}")
            groups = collections.Counter()
            for fn, ir in self_ir.items():
                groups[group(fn)] += ir
            print("instructions per delivery by area (self cost):")
            for label, ir in groups.most_common():
                print(f"  {ir / per:9,.0f}  {100 * ir / max(total, 1):5.1f}%  {label}")
            print(f"top {top} functions (self instructions per delivery):")
            for fn, ir in self_ir.most_common(top):
                print(f"  {ir / per:9,.1f}  {fn[:150]}")
        st = os.path.join(d, f"strace.{n}")
        if os.path.exists(st):
            calls = parse_strace(st)
            total = sum(calls.values())
            print(f"syscalls: {total:,} = {total / per:.3f} per delivery")
            for name, c in sorted(calls.items(), key=lambda kv: -kv[1])[:12]:
                print(f"  {c / per:8.3f}  {name}")
        print()


if __name__ == "__main__":
    main()
