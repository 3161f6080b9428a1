#!/usr/bin/env python3
"""tests/fuzz/mutate.py — grammar-aware mutation fuzzing of the real tlbsim CLI.

  tests/fuzz/mutate.py --tlbsim build/release/tools/tlbsim/tlbsim [--root .]
      [--count N] [--budget SECONDS] [--seed S] [--jobs J] [--timeout SECONDS]
      [--memory-limit SIZE] [--importers FRACTION] [--out DIR] [--quiet]

Seeds are every shipped experiment (configs/experiments) and every catalog
workload (workloads/catalog, by name and inline), shrunk so that one run takes a
fraction of a second (sizes of 64 MiB and more become 16 MiB, a sweep keeps at
most four points). Each mutant applies one to three of the mutators below to a seed and may
add random --set arguments; it is checked with `tlbsim validate` and then `tlbsim
run`, under a timeout and an address-space limit (RLIMIT_AS, as `ulimit -v` sets
it). A fraction of the mutants (--importers) mutate the importers' sample traces
instead and run tools/import-lackey / tools/import-strace, then tlbsim on what they
wrote.

Outcomes:
  ok            run exited 0
  bad_input     exit 2 and every message line names a file and a pointer or line
  bad_message   exit 2 but a message line lacks the file and pointer or line
  internal      exit 1 (an internal error) from validate or run
  signal        killed by a signal (not the timeout)
  timeout       the timeout expired on a workload that is not legitimately long
  timeout_long  the timeout expired on a workload whose sizes or counts make it
                long (a size of 512 MiB or more, a count of a million or more)
  disagree      validate refused what run accepted
  other_exit    any other exit code
  importer_*    for importer mutants: crash (exit not 0 or 2), bad_message,
                emitted_bad (tlbsim refused the importer's output)

Every outcome but ok, bad_input and timeout_long is a finding: the mutant, its
arguments and the output are saved under --out, and the exit code is 1.
"""
import argparse
import concurrent.futures
import copy
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

FINDINGS = {"bad_message", "internal", "signal", "timeout", "disagree", "other_exit",
            "importer_crash", "importer_bad_message", "importer_emitted_bad"}
# "tlbsim: FILE: /pointer: ..." or "tlbsim: FILE: line N[, column M]: ..."; sweeps
# prefix "sweep point N (...) STATUS: " and repeat the worker's "tlbsim: ".
PLACED = re.compile(r"\S: (/[^ ]*|line \d+(, column \d+)?): ")
OPS = ["mmap", "touch", "access", "munmap", "mprotect", "madvise", "mremap", "fork", "exit",
       "wait", "barrier", "mlock", "munlock", "move_pages", "uffdio_move", "reclaim", "sleep",
       "region", "migrate", "replay", "pin", "unpin", "repeat"]
MACHINES = ["x86_small", "x86_server", "arm64_small", "arm64_server", "arm64_server_v2"]
KERNELS = ["linux-6.7", "linux-6.8", "linux-6.9", "linux-6.12", "linux-6.15", "linux-6.18", "linux-6.19"]
SIZE_KEYS = {"size", "length", "offset", "stride", "align", "target_free", "memory", "bytes"}
COUNT_KEYS = {"count", "repeat", "pages", "cycles", "think_cycles"}
UNICODE = ["\u00e9t\u00e9", "\U0001F600", "\u202eabc", "a\u0301", "\u0000", "\ud800",
           "\uffff", "\u4e2d\u6587", "e\u0308\u0308\u0308"]
NUMBERS = [0, 1, -1, 4095, 4096, 4097, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**44, 2**44 + 1,
           2**47, 2**48, 2**52, 2**56, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30, 1.5, -0.0,
           1e308, 1e-300]


# --- the JSON tree --------------------------------------------------------------------

def nodes(doc):
    """Every (container, key) below doc, without recursion."""
    out, todo = [], [doc]
    while todo:
        v = todo.pop()
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, child in items:
            out.append((v, k))
            if isinstance(child, (dict, list)):
                todo.append(child)
    return out


def pick(rng, doc, want=None):
    cands = [(c, k) for c, k in nodes(doc) if want is None or want(c, k, c[k])]
    return rng.choice(cands) if cands else None


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def size_like(c, k, v):
    return k in SIZE_KEYS or (isinstance(v, str) and re.fullmatch(r"\d+\s*[KMGT]i?B", v or ""))


def op_lists(doc):
    return [c[k] for c, k in nodes(doc) if k == "ops" and isinstance(c[k], list)]


def ops_of(doc):
    return [c[k] for c, k in nodes(doc) if isinstance(c[k], dict) and "op" in c[k]]


# --- mutators: each changes doc in place (or returns replacement text) ---------------

def m_wrong_type(rng, doc, ctx):
    n = pick(rng, doc)
    if n:
        c, k = n
        c[k] = rng.choice([None, True, False, 0, -1, 1.5, "x", "", [], {}, [1, 2], {"a": 1}])


def m_huge_number(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: is_num(v) or size_like(c, k, v))
    if n:
        n[0][n[1]] = rng.choice([2**64 - 1, 2**63, 2**64, 10**30, 1.7e308, 2**53 + 1])


def m_negative(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: is_num(v) or size_like(c, k, v))
    if n:
        v = n[0][n[1]]
        n[0][n[1]] = -v if is_num(v) and v else rng.choice([-1, -4096, -(2**63)])


def m_nan_like(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: is_num(v))
    if n:
        n[0][n[1]] = "__RAW__"
        ctx["raw"] = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "0x10",
                                 "1e99999", "00012", ".5", "1.", "-"])


def m_bogus_unit(rng, doc, ctx):
    n = pick(rng, doc, size_like)
    if n:
        n[0][n[1]] = rng.choice(["4 furlong", "4KB", "4kib", "1e3MiB", "-1GiB", "4 KiB extra",
                                 "0x1000", "", " ", "1PiB", "18446744073709551616", "4KiBKiB",
                                 "1.5MiB", "16EiB", "99999999999999999999TiB"])


def m_unicode(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: isinstance(v, str))
    if n:
        n[0][n[1]] = rng.choice([n[0][n[1]] + rng.choice(UNICODE), rng.choice(UNICODE)])
    elif isinstance(doc, dict):
        doc[rng.choice(UNICODE)] = 1


def m_deep_nesting(rng, doc, ctx):
    n = pick(rng, doc)
    if n:
        ctx["deep"] = (json.dumps(n[0][n[1]]), rng.choice([50, 150, 199, 201, 400, 5000, 100000]))
        n[0][n[1]] = "__DEEP__"


def m_op_reorder(rng, doc, ctx):
    lists = [l for l in op_lists(doc) if len(l) > 1]
    if lists:
        rng.shuffle(rng.choice(lists))


def m_cpu_range(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: k == "cpu")
    if n:
        n[0][n[1]] = rng.choice([2, 3, 8, 1023, 1024, 2**32, 2**32 + 1, -1, 2**64 - 1, "0"])


def m_duplicate_name(rng, doc, ctx):
    named = [o for o in ops_of(doc) if "name" in o]
    if len(named) > 1:
        a, b = rng.sample(named, 2)
        a["name"] = b["name"]


def m_random_set(rng, doc, ctx):
    key = rng.choice(ctx["param_keys"] + ["machine", "kernel", "seed", "folio_size", "name",
                                          "workload", "workload.params.size", "sweep"])
    val = rng.choice(["0", "1", "-1", "4096", "1e400", "1.5", "true", "\"x\"", "null", "[]",
                      "{}", "18446744073709551616", "64KiB", "2MiB", "x86_server",
                      "arm64_small", "linux-6.7", "nope", "[" * 300, "\"" + "y" * 300 + "\""])
    ctx["args"] += ["--set", f"{key}={val}"]


def m_delete_key(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: isinstance(c, dict))
    if n:
        del n[0][n[1]]


def m_unknown_key(rng, doc, ctx):
    objs = [c[k] for c, k in nodes(doc) if isinstance(c[k], dict)] + [doc]
    o = rng.choice(objs)
    if isinstance(o, dict):
        o[rng.choice(["sizee", "cpuz", "_comment", "op", "ops", "preset", "params", "zz" * 20])] = 1


def m_duplicate_op(rng, doc, ctx):
    lists = [l for l in op_lists(doc) if l]
    if lists:
        l = rng.choice(lists)
        i = rng.randrange(len(l))
        l.insert(i, copy.deepcopy(l[i]))


def m_drop_op(rng, doc, ctx):
    lists = [l for l in op_lists(doc) if l]
    if lists:
        l = rng.choice(lists)
        del l[rng.randrange(len(l))]


def m_boundary(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: is_num(v) or size_like(c, k, v) or k in COUNT_KEYS)
    if n:
        n[0][n[1]] = rng.choice(NUMBERS)


def m_long_string(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: isinstance(v, str))
    if n:
        n[0][n[1]] = rng.choice(["z", n[0][n[1]] or "z"]) * rng.choice([255, 256, 300, 5000])


def m_control_chars(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: isinstance(v, str))
    if n:
        n[0][n[1]] = n[0][n[1]] + rng.choice(["\n", "\t", "\x01", "\x7f", "\r\n", "\x1b[31m"])


def m_op_kind(rng, doc, ctx):
    ops = ops_of(doc)
    if ops:
        rng.choice(ops)["op"] = rng.choice(OPS + ["mmapp", "", "TOUCH"])


def m_size_scale(rng, doc, ctx):
    n = pick(rng, doc, size_like)
    if n:
        v = n[0][n[1]]
        if isinstance(v, str):
            m = re.fullmatch(r"(\d+)\s*([KMGT])i?B", v)
            if m:
                units = "KMGT"
                u = min(3, units.index(m.group(2)) + rng.choice([1, 2, 3]))
                n[0][n[1]] = f"{m.group(1)}{units[u]}iB"
        elif is_num(v):
            n[0][n[1]] = int(v) * 4096


def m_sweep(rng, doc, ctx):
    if not isinstance(doc, dict):
        return
    axes = {
        "machine": [rng.choice(MACHINES), rng.choice(MACHINES + ["nope"])],
        "kernel": [rng.choice(KERNELS), rng.choice(KERNELS + ["linux-9.99"])],
        "seed": [1, rng.choice([2, -1, "x", 2**64 - 1])],
        "folio_size": ["4KiB", rng.choice(["64KiB", "2MiB", "8KiB", "3KiB"])],
        "machine.cpus": [2, rng.choice([4, 0, 2000])],
        "workload.params.size": ["1MiB", rng.choice(["2MiB", "1 furlong", "1MiB" + " " * 300])],
        "kernel.zap_batching": [True, False],
        "bogus": [1],
    }
    keys = rng.sample(sorted(axes), rng.choice([1, 1, 2]))
    doc["sweep"] = {k: axes[k] for k in keys}
    if rng.random() < 0.1:
        doc["sweep"] = rng.choice([{}, [], {"seed": []}, {"seed": 1}])


def m_fork_inject(rng, doc, ctx):
    lists = [l for l in op_lists(doc) if l]
    if lists:
        l = rng.choice(lists)
        i = rng.randrange(len(l))
        j = rng.randrange(i, len(l) + 1)
        l[i:j] = [{"op": "fork", "cpu": rng.choice([1, 2, 3, 7]), "ops": l[i:j]}]


def m_truncate_text(rng, doc, ctx):
    ctx["text_cut"] = rng.random()


def m_empty_container(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: isinstance(v, (dict, list)))
    if n:
        n[0][n[1]] = [] if isinstance(n[0][n[1]], list) else {}


def m_param_ref(rng, doc, ctx):
    n = pick(rng, doc, lambda c, k, v: isinstance(v, str))
    if n:
        n[0][n[1]] = rng.choice(["${nope}", "${", "${size}${size}", "x${size}y", "${}", "$${size}",
                                 "${size", "${second_cpu_touch}"])


def m_fixed_addr(rng, doc, ctx):
    mm = [o for o in ops_of(doc) if o.get("op") == "mmap"]
    if mm:
        o = rng.choice(mm)
        o["addr"] = rng.choice([2**47 - 4096, 2**47 - 8192, 2**47, 2**48 - 4096, 2**48,
                                2**48 + 2**24, 2**56 - 4096, 2**64 - 4096, 4096, 0x10000000, 1])
        o["fixed"] = rng.random() < 0.8


def m_preset_swap(rng, doc, ctx):
    if isinstance(doc, dict):
        if rng.random() < 0.5:
            doc["machine"] = rng.choice(MACHINES + ["nope", {"preset": rng.choice(MACHINES)}])
        else:
            doc["kernel"] = rng.choice(KERNELS + ["linux-6.18", "nope"])


def m_machine_override(rng, doc, ctx):
    if not isinstance(doc, dict):
        return
    m = doc.get("machine")
    m = {"preset": m} if isinstance(m, str) else m if isinstance(m, dict) else {"preset": "x86_small"}
    tlb = rng.choice(["l1d", "l1d_2m", "stlb"])
    field, value = rng.choice([
        ((tlb, "entries"), rng.choice([0, 1, 3, 65536, 2**20, 2**20 + 1])),
        ((tlb, "ways"), rng.choice([0, 1, 5, 2**20])),
        ((tlb, "sizes"), rng.choice(["", "4KiB,4KiB", "64KiB", "1GiB", "4KiB,,2MiB", "16KiB"])),
        ((tlb, "replacement"), rng.choice(["random", "tree_plru", "fifo"])),
        (("memory",), rng.choice(["16MiB", "15MiB", "1TiB", "2TiB", "64GiB"])),
        (("cpus",), rng.choice([1, 64, 1024, 1025])),
        (("pgtable_levels",), rng.choice([3, 5, 6])),
        (("freq_ghz",), rng.choice([0, -1, 1e-9, 1e9])),
        (("quantum_cycles",), rng.choice([0, 1, 2**24, 2**24 + 1])),
        (("cache", "llc", "bytes"), rng.choice(["0B", "3MiB", "2GiB", "4GiB"])),
        (("cache", "mlp"), rng.choice([0, 0.5, 64, 65])),
        (("arm64", "walk_cache_entries"), rng.choice([0, 10, 2**20])),
        (("topology", "sockets"), rng.choice([0, 2, 3, 64])),
    ])
    cur = m
    for f in field[:-1]:
        cur = cur.setdefault(f, {}) if isinstance(cur.get(f, {}), dict) else {}
    cur[field[-1]] = value
    doc["machine"] = m


def m_pattern(rng, doc, ctx):
    touches = [o for o in ops_of(doc) if o.get("op") in ("touch", "access")]
    if touches:
        o = rng.choice(touches)
        o["pattern"] = rng.choice(["zipf", "random", "strided", "sequential", "gaussian"])
        if rng.random() < 0.5:
            o["zipf_theta"] = rng.choice([0, 1e-9, 0.5, 0.99, 1, 9.99, 10, 1e300])
        if rng.random() < 0.3:
            o["stride"] = rng.choice([1, 64, 4096, 2**40, 0])


MUTATORS = [m_wrong_type, m_huge_number, m_negative, m_nan_like, m_bogus_unit, m_unicode,
            m_deep_nesting, m_op_reorder, m_cpu_range, m_duplicate_name, m_random_set,
            m_delete_key, m_unknown_key, m_duplicate_op, m_drop_op, m_boundary, m_long_string,
            m_control_chars, m_op_kind, m_size_scale, m_sweep, m_fork_inject, m_truncate_text,
            m_empty_container, m_param_ref, m_fixed_addr, m_preset_swap, m_machine_override,
            m_pattern]


# --- seeds ------------------------------------------------------------------------------

def shrink(v):
    """Sizes of 64 MiB and more become 16 MiB; a sweep keeps at most four points (two
    values of its first two axes, one of the others)."""
    todo = [v]
    while todo:
        x = todo.pop()
        items = list(x.items()) if isinstance(x, dict) else list(enumerate(x)) if isinstance(x, list) else []
        for k, child in items:
            if isinstance(child, str):
                m = re.fullmatch(r"(\d+)\s*([MGT])iB", child)
                if m and (m.group(2) != "M" or int(m.group(1)) >= 64):
                    x[k] = "16MiB"
            elif isinstance(child, (dict, list)):
                if k == "sweep" and isinstance(child, dict):
                    for n, axis in enumerate(child):
                        if isinstance(child[axis], list):
                            child[axis] = child[axis][:2 if n < 2 else 1]
                todo.append(child)
    return v


def seeds(root):
    out = []
    exp_dir = os.path.join(root, "configs/experiments")
    for f in sorted(os.listdir(exp_dir)):
        if f.endswith(".json"):
            out.append((f"experiment:{f}", shrink(json.load(open(os.path.join(exp_dir, f))))))
    cat_dir = os.path.join(root, "workloads/catalog")
    for f in sorted(os.listdir(cat_dir)):
        if not f.endswith(".json"):
            continue
        name = f[:-5]
        w = json.load(open(os.path.join(cat_dir, f)))
        machine = {"preset": "x86_small", "cpus": 8}
        params = shrink(copy.deepcopy(w.get("params", {})))
        out.append((f"catalog:{name}", {"machine": machine, "workload": {"preset": name, "params": params}}))
        out.append((f"inline:{name}", {"machine": dict(machine), "workload": shrink(w)}))
    return out


# --- running ------------------------------------------------------------------------------

def limits(memory):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setpgrp()
    return apply


def run(cmd, timeout, memory, env=None, cwd=None):
    """(returncode or 'timeout', stdout, stderr); the whole process group is killed
    at the timeout (a sweep's workers too)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                         preexec_fn=limits(memory))
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        return "timeout", out.decode(errors="replace"), err.decode(errors="replace")


def placed(err):
    lines = [l for l in err.splitlines() if l.strip()]
    return bool(lines) and all(PLACED.search(l) for l in lines)


def long_workload(text):
    """Sizes of 512 MiB or more or counts of a million or more: legitimately slow."""
    for m in re.finditer(r"(\d+)\s*([KMGT])i?B", text):
        if int(m.group(1)) << (10 * (" KMGT".index(m.group(2)))) >= 512 << 20:
            return True
    for m in re.finditer(r'"(size|length|count|repeat|pages|target_free|memory|stride)":\s*(\d+)', text):
        if int(m.group(2)) >= 10**6:
            return True
    # Bytes written as a plain number anywhere (a sweep axis value, size_per_thread).
    if any(int(m.group(0)) >= 512 << 20 for m in re.finditer(r"\b\d{9,}\b", text)):
        return True
    return '"sweep"' in text and text.count("machine") > 3


def classify(code, err, text):
    if code == "timeout":
        return "timeout_long" if long_workload(text) else "timeout"
    if code == 0:
        return "ok"
    if code == 2:
        return "bad_input" if placed(err) else "bad_message"
    if code == 1:
        return "internal"
    if code < 0:
        return "signal"
    return "other_exit"


def render(doc, ctx):
    text = json.dumps(doc, ensure_ascii=False)
    if "raw" in ctx:
        text = text.replace('"__RAW__"', ctx["raw"], 1)
    if "deep" in ctx:
        inner, depth = ctx["deep"]
        text = text.replace('"__DEEP__"', "[" * depth + inner + "]" * depth, 1)
    if "text_cut" in ctx:
        i = int(len(text) * ctx["text_cut"])
        text = text[:i] + random.Random(i).choice(["", ",", "}", "]", "\"", ":", "\x00", "{{"]) + text[i + 1:]
    return text


def cli_mutant(a, rng, seed_list, param_keys, work):
    name, seed = rng.choice(seed_list)
    doc = copy.deepcopy(seed)
    ctx = {"args": [], "param_keys": param_keys}
    chosen = rng.sample(MUTATORS, rng.choice([1, 1, 2, 3]))
    for m in chosen:
        m(rng, doc, ctx)
    text = render(doc, ctx)
    path = os.path.join(work, "exp.json")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    env = dict(os.environ, TLBSIM_ROOT=a.root, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
    vcode, _, verr = run([a.tlbsim, "validate", path] + ctx["args"], a.timeout, a.memory_limit, env)
    vclass = classify(vcode, verr, text)
    rcode, _, rerr = run([a.tlbsim, "run", path, "--quiet", "-j", "1", "--out",
                          os.path.join(work, "out")] + ctx["args"], a.timeout, a.memory_limit, env)
    rclass = classify(rcode, rerr, text)
    outcome = rclass
    if vclass in FINDINGS and vclass != "timeout":
        outcome = vclass
    elif vclass == "bad_input" and rclass == "ok":
        outcome = "disagree"
    detail = {"seed": name, "mutators": [m.__name__[2:] for m in chosen], "args": ctx["args"],
              "validate": [str(vcode), verr[-2000:]], "run": [str(rcode), rerr[-2000:]]}
    return outcome, text, detail


# --- importer mutants ------------------------------------------------------------------

def mutate_lines(rng, lines):
    ops = rng.choice([1, 1, 2, 3])
    for _ in range(ops):
        if not lines:
            lines.append("garbage")
        i = rng.randrange(len(lines))
        kind = rng.randrange(9)
        if kind == 0:  # a number becomes huge, negative or garbage
            nums = list(re.finditer(r"0x[0-9a-fA-F]+|\b\d+\b", lines[i]))
            if nums:
                m = rng.choice(nums)
                rep = rng.choice(["18446744073709551615", "18446744073709551616", "-1", "-4096",
                                  "0x" + "f" * 17, "0", "0xffff800000000000", "1" * 40, "zz"])
                lines[i] = lines[i][:m.start()] + rep + lines[i][m.end():]
        elif kind == 1:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif kind == 2:
            lines.insert(i, lines[i])
        elif kind == 3:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 4:
            del lines[i]
        elif kind == 5:
            lines[i] = lines[i].replace("mmap(", rng.choice(["munmap(", "mprotect(", "brk(", "clone(", "madvise("]), 1)
        elif kind == 6:
            lines[i] += rng.choice(["\x00", "\xff", " <unfinished ...>", " = -1 ENOMEM", "\u00e9"])
        elif kind == 7:
            lines[i] = lines[i].replace("PROT_READ", rng.choice(["PROT_NONE", "PROT_EXEC", ""]), 1)
        else:
            lines[i] = lines[i].replace(",", rng.choice([",,", ", 0,", ""]), 1)
    return lines


def chain_trace(rng):
    depth = rng.choice([10, 63, 64, 65, 3000])
    return [f"{100 + i} 1.{i:06d} clone(child_stack=NULL, flags=SIGCHLD) = {101 + i}" for i in range(depth)]


def importer_mutant(a, rng, work):
    strace = rng.random() < 0.6
    tool = os.path.join(a.root, "tools", "import-strace" if strace else "import-lackey")
    sample = os.path.join(a.root, "tests/data", "strace-sh-ls-wc.txt" if strace else "lackey-true.txt")
    lines = open(sample, errors="replace").read().splitlines()
    if strace and rng.random() < 0.05:
        lines = chain_trace(rng)
    else:
        lines = mutate_lines(rng, lines)
    trace = os.path.join(work, "in.txt")
    with open(trace, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write("\n".join(lines) + "\n")
    out = os.path.join(work, "imp.json")
    args = [tool, trace, "-o", out]
    if strace:
        args += rng.choice([[], ["--cpus", "8"], ["--cpus", "8", "--supported-only", "--touch"],
                            ["--cpus", "1024", "--supported-only"]])
    code, sout, serr = run(args, a.timeout * 2, a.memory_limit)
    detail = {"seed": os.path.basename(sample), "args": args[1:], "importer": [str(code), serr[-2000:]]}
    text = "\n".join(lines[:400])
    if code == "timeout":
        return "importer_crash", text, detail
    if code == 2:
        ok = re.search(r"line \d+: |: (no |the workload needs|forks nested|--cpus)", serr) and serr.count("\n") <= 1
        return ("bad_input" if ok else "importer_bad_message"), text, detail
    if code != 0:
        return "importer_crash", text, detail
    m = re.search(r"on (\d+) CPUs", sout)
    cpus = int(m.group(1)) if m else 1
    exp = os.path.join(work, "exp.json")
    with open(exp, "w") as f:
        f.write('{"machine": {"preset": "x86_small", "cpus": %d}, "workload": %s}' % (max(cpus, 1), open(out).read()))
    env = dict(os.environ, TLBSIM_ROOT=a.root)
    vcode, _, verr = run([a.tlbsim, "validate", exp], a.timeout, a.memory_limit, env)
    rcode, _, rerr = run([a.tlbsim, "run", exp, "--quiet", "--out", os.path.join(work, "out")],
                         a.timeout, a.memory_limit, env)
    detail.update({"validate": [str(vcode), verr[-2000:]], "run": [str(rcode), rerr[-2000:]]})
    # Running out of simulated memory is the workload's result (a synthetic --touch of
    # a huge heap), not a workload tlbsim rejects.
    if vcode != 0 or (rcode == 2 and "out of memory" not in rerr):
        return "importer_emitted_bad", text, detail
    if rcode == 2:
        return "ok", text, detail
    return classify(rcode, rerr, open(exp).read()), text, detail


# --- main ------------------------------------------------------------------------------

def parse_size(s):
    m = re.fullmatch(r"(\d+)\s*([KMGT]?)i?B?", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a size such as 4GiB, got {s!r}")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2) or " "))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tlbsim", required=True)
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--budget", type=float, default=0, help="stop starting mutants after SECONDS")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--memory-limit", type=parse_size, default=parse_size("4GiB"))
    p.add_argument("--importers", type=float, default=0.1, help="fraction of importer mutants")
    p.add_argument("--out", default="fuzz-findings")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--pause-file", help="while this file exists, start no new mutant "
                                        "(pause a long campaign while the machine builds)")
    a = p.parse_args()
    a.tlbsim = os.path.abspath(a.tlbsim)
    a.root = os.path.abspath(a.root)
    params = subprocess.run([a.tlbsim, "params"], capture_output=True, text=True).stdout
    param_keys = re.findall(r"^([a-z0-9_.\[\]]+) = ", params, re.M)
    seed_list = seeds(a.root)
    counts, lock, findings = {}, threading.Lock(), []
    start = time.time()
    base = tempfile.mkdtemp(prefix="tlbsim-fuzz-")

    def one(i):
        while a.pause_file and os.path.exists(a.pause_file):
            time.sleep(1)
        if a.budget and time.time() - start > a.budget:
            return None
        rng = random.Random(a.seed * 1_000_003 + i)
        work = os.path.join(base, str(i))
        os.makedirs(work)
        try:
            for attempt in range(2):
                rng = random.Random(a.seed * 1_000_003 + i)
                if rng.random() < a.importers:
                    outcome, text, detail = importer_mutant(a, rng, work)
                else:
                    outcome, text, detail = cli_mutant(a, rng, seed_list, param_keys, work)
                # A timeout may be the machine's load: once more, when not paused.
                if outcome not in ("timeout", "importer_crash") or "timeout" not in json.dumps(detail):
                    break
                while a.pause_file and os.path.exists(a.pause_file):
                    time.sleep(1)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with lock:
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome in FINDINGS or outcome == "timeout_long":
                d = os.path.join(a.out, f"{outcome}-{i:06d}")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "input"), "w", encoding="utf-8", errors="surrogatepass") as f:
                    f.write(text)
                with open(os.path.join(d, "detail.json"), "w") as f:
                    json.dump(detail, f, indent=1)
                if outcome in FINDINGS:
                    findings.append((i, outcome, detail))
                    if not a.quiet:
                        print(f"mutant {i}: {outcome}: {detail['seed']} {detail.get('mutators', '')} "
                              f"{json.dumps(detail.get('run', detail.get('importer')))[:300]}", flush=True)
            done = sum(counts.values())
            if not a.quiet and done % 500 == 0:
                print(f"[{done}/{a.count}] {time.time() - start:.0f} s " +
                      ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)
        return outcome

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
            list(ex.map(one, range(a.count)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    total = sum(counts.values())
    print(f"\n{total} mutants in {time.time() - start:.0f} s (seed {a.seed}, timeout {a.timeout:g} s, "
          f"memory limit {a.memory_limit >> 20} MiB)")
    print("| outcome | mutants |\n|---|---|")
    for k in sorted(counts, key=lambda k: -counts[k]):
        print(f"| {k} | {counts[k]} |")
    if findings:
        print(f"\n{len(findings)} findings, saved under {a.out}/")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
