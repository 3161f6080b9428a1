#!/usr/bin/env python3
"""The workload JSON schema accepts every workload the project ships (catalog and
inline workloads of experiments) and rejects malformed ones; its op list equals the
reader's."""
import json
import pathlib
import re
import sys

try:
    import jsonschema
except ImportError:
    print("jsonschema is not installed (Debian: python3-jsonschema)")
    sys.exit(1)

root = pathlib.Path(sys.argv[1])
schema = json.loads((root / "workloads/schema/workload.schema.json").read_text())
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
passed = failed = 0


def expect(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL", what)


def substitute(j, params):
    """The reader's "${name}" substitution with the declared defaults: the schema
    describes a workload after its parameters are filled in."""
    if isinstance(j, dict):
        return {k: substitute(x, params) for k, x in j.items() if k != "params"}
    if isinstance(j, list):
        return [substitute(x, params) for x in j]
    if isinstance(j, str) and "${" in j:
        m = re.fullmatch(r"\$\{([^}]*)\}", j)
        if m and m.group(1) in params:
            return params[m.group(1)]
        return re.sub(r"\$\{([^}]*)\}", lambda m: str(params.get(m.group(1), m.group(0))), j)
    return j


for f in sorted((root / "workloads/catalog").glob("*.json")):
    w = json.loads(f.read_text())
    errs = list(v.iter_errors(substitute(w, w.get("params", {}))))
    expect(not errs, f"{f.name}: {errs[0].message if errs else ''}")
for f in sorted((root / "configs/experiments").glob("*.json")):
    w = json.loads(f.read_text()).get("workload")
    if isinstance(w, dict) and "processes" in w:
        errs = list(v.iter_errors(w))
        expect(not errs, f"{f.name}: {errs[0].message if errs else ''}")
bad = [
    {"processes": []},
    {"processes": [{"threads": [{"ops": [{"op": "mmapp"}]}]}]},
    {"processes": [{"threads": [{"ops": [{"op": "mmap", "name": "b"}]}]}]},
    {"processes": [{"threads": [{"ops": [{"op": "touch", "mapping": "b", "szie": 1}]}]}]},
    {"processes": [{"threads": [{"ops": [{"op": "mmap", "name": "b", "size": "12 parsecs"}]}]}]},
]
for w in bad:
    expect(not v.is_valid(w), f"accepted {json.dumps(w)}")
# Templates and expressions: what the reader accepts, the schema accepts.
good = [
    {"processes": [{"threads": [{"cpu": 0, "ops": []},
                                {"count": "${nr_cpus - 1}", "cpu": "${i + 1}",
                                 "ops": [{"op": "sleep", "cycles": "${i * 100}"}]}]}]},
    {"processes": {"count": 2, "index": "p", "threads": {"count": 4, "ops": [
        {"op": "mmap", "name": "m", "size": "1GiB / 4"}]}}},
]
for w in good:
    errs = list(v.iter_errors(w))
    expect(not errs, f"rejected {json.dumps(w)}: {errs[0].message if errs else ''}")
for w in [{"processes": [{"threads": {"count": 0, "ops": []}}]},
          {"processes": [{"threads": {"cpu": 0, "ops": []}}]},
          {"processes": [{"threads": [{"count": 2, "ops": [], "cpus": 1}]}]}]:
    expect(not v.is_valid(w), f"accepted {json.dumps(w)}")
# The schema's op names are exactly the reader's.
src = (root / "workloads/workload_reader.cpp").read_text()
reader_ops = set(re.findall(r'\{"([a-z_]+)", OpKind::', src))
schema_ops = set(schema["$defs"]["op"]["properties"]["op"]["enum"])
expect(reader_ops == schema_ops, f"op lists differ: reader-only {reader_ops - schema_ops}, schema-only {schema_ops - reader_ops}")
# The importers emit exactly the madvise advices the reader executes.
m = re.search(r'op\.advice = r\.choice\("advice", "", \{([^}]*)\}', src)
reader_adv = set(re.findall(r'"([a-z]+)"', m.group(1))) if m else set()
# less those it names but refuses as "not supported yet" (collapse)
reader_adv -= set(re.findall(r'op\.advice == "([a-z]+)"\)\s*throw InputError\([^;]*?not supported yet', src, re.S))
strace = (root / "tools/import-strace").read_text()
strace_adv = set(re.findall(r'"([a-z]+)"', re.search(r"ADVICES = \{([^}]*)\}", strace).group(1)))
cap = (root / "tools/capture_import/capture_import.cpp").read_text()
cap_adv = set(re.findall(r'\{\d+, "([a-z]+)"\}', cap))
expect(reader_adv and reader_adv == strace_adv, f"import-strace advices {strace_adv} != reader's {reader_adv}")
expect(reader_adv and reader_adv == cap_adv, f"capture-import advices {cap_adv} != reader's {reader_adv}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
