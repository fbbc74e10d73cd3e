#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The CI workflow .gitea/workflows/container-tests.yml parses (python3-yaml),
# has the jobs and triggers it promises, and names only commands that
# exist: every script it runs is in the tree and executable, every meson
# suite it runs is defined, every action it uses is the checkout.
. "$(dirname "$0")/lib.sh"
need_program python3 python3
python3 -c 'import yaml' 2>/dev/null || t_skip_all "python3-yaml is not installed"
SRC=${STRATA_SOURCE_ROOT:-$(dirname "$0")/../..}
WF="$SRC/.gitea/workflows/container-tests.yml"

t_begin "the workflow parses, with push-on-main triggers for src/, scripts/ and tests/"
out=$(python3 - "$WF" <<'PYEOF' 2>&1
import sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
on = w.get("on", w.get(True))  # YAML 1.1 reads a bare `on` as true
push = on["push"]
assert push["branches"] == ["main"], push
assert sorted(push["paths"]) == ["scripts/**", "src/**", "tests/**"], push["paths"]
jobs = w["jobs"]
assert list(jobs) == ["unit-tests", "integration"], list(jobs)
assert jobs["integration"]["needs"] == "unit-tests"
runs = [s["run"] for j in jobs.values() for s in j["steps"] if "run" in s]
assert any("--suite unit" in r for r in runs), runs
assert any("scripts/run-container-tests.sh --start" in r for r in runs), runs
PYEOF
)
if [ -z "$out" ]; then t_ok; else t_fail "$out"; fi

t_begin "every command it runs exists: scripts in the tree, meson suites defined, the checkout action"
out=$(python3 - "$WF" "$SRC" <<'PYEOF' 2>&1
import os, re, shlex, shutil, sys, yaml
w = yaml.safe_load(open(sys.argv[1]))
src = sys.argv[2]
suites = set(re.findall(r"suite\s*:\s*'([a-z0-9-]+)'",
                        "".join(open(os.path.join(d, f)).read()
                                for d, _, fs in os.walk(src) if "/build" not in d and "/.git" not in d
                                for f in fs if f == "meson.build")))
bad = []
for name, job in w["jobs"].items():
    for step in job["steps"]:
        if "uses" in step:
            if not step["uses"].startswith("actions/checkout@"):
                bad.append("%s: unknown action %s" % (name, step["uses"]))
            continue
        for cmd in re.split(r"&&|\|\||;|\|", step["run"]):
            words = shlex.split(cmd)
            if not words:
                continue
            prog = words[0]
            if "/" in prog:
                path = os.path.join(src, prog)
                if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                    bad.append("%s: '%s' is not an executable file in the tree" % (name, prog))
            elif prog in ("meson", "ninja", "make"):
                if prog == "make" and not os.path.isfile(os.path.join(src, "Makefile")):
                    bad.append("no Makefile")
                for i, wd in enumerate(words):
                    if wd == "--suite" and words[i + 1] not in suites:
                        bad.append("%s: no meson suite '%s'" % (name, words[i + 1]))
            else:
                bad.append("%s: '%s' is neither in the tree nor a build tool" % (name, prog))
        for wd in shlex.split(step["run"]):
            if wd.startswith("scripts/") and wd.endswith(".sh") and not os.path.isfile(os.path.join(src, wd)):
                bad.append("%s: '%s' is missing" % (name, wd))
print("\n".join(bad))
PYEOF
)
if [ -z "$out" ]; then t_ok; else t_fail "$out"; fi

t_begin "the options the workflow gives the smoke script are ones it takes"
if "$SRC/scripts/run-container-tests.sh" --help | grep -q -- "--start" &&
    "$SRC/scripts/run-container-tests.sh" --help | grep -q -- "--strata"; then
    t_ok
else
    t_fail "$("$SRC/scripts/run-container-tests.sh" --help 2>&1 | head -5)"
fi

t_done
