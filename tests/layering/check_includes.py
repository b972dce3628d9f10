#!/usr/bin/env python3
"""The include graph follows docs/architecture.md's layering rules.

    check_includes.py SOURCE_DIR     check the tree; exit 1 on a new violation
    check_includes.py --self-test    show that each rule catches a bad include

Rules (an include is `#include "folder/..."` or `<folder/...>` naming a
project folder; a file may always include its own folder):
  common/             includes no other project folder
  config/, policy/    include only common/
  backends/<x>/       include only common/, backends/hostfs, backends/swap
  dbus/               includes only common/ (generated code lives in dbus/)
  metrics/            includes only common/ and dbus/status.hpp (the status
                      model it turns into Prometheus text; nothing that talks
                      to the bus)
  ctl/                never a kernel-changing backend
  bench/swap/         neither (it is linked into tierswapctl: `bench` changes
                      tiers only through a tierswapd child process)
  anything            includes daemon/ only from daemon/ or tests/
  a plug-in header    (backends/<kind>/<kind>_kind.hpp) only from its own
                      folder, daemon/kind_registry.cpp and tests/: the
                      registry is the one place a kind is named

KNOWN lists today's violations that other work removes; the lead deletes an
entry when it merges. A new violation fails; an entry that no longer occurs
is only reported, so that merges in any order keep the check green.
"""

import os
import re
import sys
import tempfile

PROJECT = {"common", "config", "policy", "backends", "dbus", "metrics", "daemon", "ctl", "tests", "bench"}
SOURCE_EXT = (".hpp", ".cpp", ".h", ".cc", ".cu")
SCANNED = ("common", "config", "policy", "backends", "dbus", "metrics", "daemon", "ctl", "tests", "bench")
PLUGIN_HEADER = re.compile(r"^backends/([^/]+)/\1_kind\.hpp$")
REGISTRY = "daemon/kind_registry.cpp"
METRICS_MAY_INCLUDE = "dbus/status.hpp"
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)

# Backends whose code changes the kernel (tierswapctl must never link them).
KERNEL_CHANGING = ("backends/zram/", "backends/zswap/", "backends/disk/", "backends/sysctl/",
                   "backends/vram/", "backends/cgroup/", "backends/swap/kernel.hpp")

# (including file, included file): known violations, each with its reason.
KNOWN = {
    # policy/ parsers name their /proc file through hostfs' path table; the
    # paths should be arguments (readers take their path, STYLE.md).
    ("policy/meminfo.cpp", "backends/hostfs/paths.hpp"),
    ("policy/vmstat.cpp", "backends/hostfs/paths.hpp"),
    # tierswapctl check/plan run the daemon's planner locally.
    ("ctl/file_command.hpp", "daemon/plan_file.hpp"),
    ("ctl/cmd_plan.cpp", "daemon/plan_ops.hpp"),
    # tierswapctl simulate converts policy: settings as the daemon does (one
    # owner of the MiB/seconds -> PolicySpec rule; config/ and policy/ may
    # not include each other).
    ("ctl/cmd_simulate.cpp", "daemon/policy_spec.hpp"),
}


def folder_of(path):
    """"backends/zram/zram.hpp" -> "backends/zram"; "common/x.hpp" -> "common"."""
    parts = path.split("/")
    if parts[0] == "backends" and len(parts) > 2:
        return "backends/" + parts[1]
    return parts[0]


def rule_breaks(src, inc):
    """Why `src` may not include `inc`, or None."""
    if inc.split("/")[0] not in PROJECT:
        return None
    top, own, target = src.split("/")[0], folder_of(src), folder_of(inc)
    if target == own:
        return None
    if PLUGIN_HEADER.match(inc) and src != REGISTRY and top != "tests":
        return "only " + REGISTRY + " names a tier-kind plug-in"
    if target == "daemon" and top not in ("daemon", "tests"):
        return "only daemon/ and tests include daemon/"
    if top == "common":
        return "common/ includes no project folder"
    if top in ("config", "policy") and target != "common":
        return top + "/ includes only common/"
    if top == "backends" and target not in ("common", "backends/hostfs", "backends/swap"):
        return "backends/* include only common/, backends/hostfs and backends/swap"
    if top == "dbus" and target != "common":
        return "dbus/ includes only common/ (and its generated code)"
    if top == "metrics" and target != "common" and inc != METRICS_MAY_INCLUDE:
        return "metrics/ includes only common/ and " + METRICS_MAY_INCLUDE
    if top == "ctl" and any(inc.startswith(k) for k in KERNEL_CHANGING):
        return "ctl/ never includes a kernel-changing backend"
    if src.startswith("bench/swap/") and any(inc.startswith(k) for k in KERNEL_CHANGING):
        return "bench/swap/ is part of tierswapctl: never a kernel-changing backend"
    return None


def scan(root):
    """Yields (file, included, reason) for every include that breaks a rule."""
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d not in ("fixtures", "corpus", "golden"))
            for name in sorted(filenames):
                if not name.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    why = rule_breaks(rel, inc)
                    if why:
                        yield rel, inc, why


def check(root, known, out=sys.stdout):
    found = list(scan(root))
    new = [(f, i, w) for f, i, w in found if (f, i) not in known]
    seen = {(f, i) for f, i, _ in found}
    for f, i in sorted(known - seen):
        print(f"note: known exception no longer occurs (remove it from KNOWN): {f} -> {i}", file=out)
    for f, i, w in new:
        print(f"{f}: includes \"{i}\": {w}", file=out)
    if new:
        print(f"{len(new)} new layering violation(s); see docs/architecture.md", file=out)
    else:
        print(f"include graph ok ({len(found)} known exception(s) still present)", file=out)
    return not new


def self_test():
    cases = [
        ("common/a.hpp", "daemon/engine.hpp", False),
        ("common/a.hpp", "backends/hostfs/host_fs.hpp", False),
        ("common/a.hpp", "common/result.hpp", True),
        ("config/a.cpp", "backends/hostfs/paths.hpp", False),
        ("policy/a.cpp", "common/result.hpp", True),
        ("backends/zram/a.cpp", "backends/hostfs/host_fs.hpp", True),
        ("backends/zram/a.cpp", "backends/swap/kernel.hpp", True),
        ("backends/zram/a.cpp", "backends/disk/disk.hpp", False),
        ("backends/zram/a.cpp", "config/spec.hpp", False),
        ("backends/zram/a.cpp", "dbus/names.hpp", False),
        ("dbus/a.cpp", "dbus/manager1_adaptor.h", True),
        ("dbus/a.cpp", "config/spec.hpp", False),
        ("ctl/a.cpp", "backends/zram/zram.hpp", False),
        ("ctl/a.cpp", "backends/swap/kernel.hpp", False),
        ("ctl/a.cpp", "backends/hostfs/host_fs.hpp", True),
        # The signal readers only read (NVML, power_supply): doctor shows them.
        ("ctl/a.cpp", "backends/gpu/nvml.hpp", True),
        ("ctl/a.cpp", "backends/power/power_supply.hpp", True),
        ("backends/gpu/a.cpp", "policy/snapshot.hpp", False),
        ("ctl/a.cpp", "daemon/engine.hpp", False),
        ("bench/a.cpp", "daemon/engine.hpp", False),
        ("bench/swap/a.cpp", "backends/zram/zram.hpp", False),
        ("bench/swap/a.cpp", "backends/swap/proc_swaps.hpp", True),
        ("bench/nbd/a.cpp", "backends/vram/block_store.hpp", True),
        ("tests/unit/a.cpp", "daemon/engine.hpp", True),
        ("daemon/a.cpp", "backends/zram/zram.hpp", True),
        ("daemon/planner.cpp", "backends/zram/zram_kind.hpp", False),
        ("daemon/kind_registry.cpp", "backends/zram/zram_kind.hpp", True),
        ("backends/zram/zram_kind.cpp", "backends/zram/zram_kind.hpp", True),
        ("backends/disk/a.cpp", "backends/zram/zram_kind.hpp", False),
        ("metrics/a.cpp", "dbus/status.hpp", True),
        ("metrics/a.cpp", "common/result.hpp", True),
        ("metrics/a.cpp", "dbus/service.hpp", False),
        ("metrics/a.cpp", "backends/hostfs/host_fs.hpp", False),
        ("metrics/a.cpp", "daemon/manager.hpp", False),
        ("daemon/a.cpp", "metrics/prometheus_text.hpp", True),
    ]
    ok = True
    with tempfile.TemporaryDirectory() as root:
        for src, inc, allowed in cases:
            path = os.path.join(root, src)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(f'#include "{inc}"\n')
            with open(os.devnull, "w") as quiet:
                passed = check(root, set(), quiet)
            if passed != allowed:
                print(f"self-test: {src} -> {inc}: expected {'pass' if allowed else 'fail'}")
                ok = False
            os.remove(path)
        # A known exception is tolerated; the same include elsewhere is not.
        path = os.path.join(root, "dbus/names.hpp")
        with open(path, "w") as f:
            f.write('#include "daemon/engine.hpp"\n')
        with open(os.devnull, "w") as quiet:
            if not check(root, {("dbus/names.hpp", "daemon/engine.hpp")}, quiet):
                print("self-test: a known exception failed the check")
                ok = False
            if check(root, set(), quiet):
                print("self-test: an unlisted violation passed the check")
                ok = False
    print("self-test " + ("ok" if ok else "FAILED"))
    return ok


def main(argv):
    if argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return 0 if check(argv[1], KNOWN) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
