#!/usr/bin/env python3
"""Regenerates the figures table of docs/robustness.md from a build tree.

    tests/robustness_figures.py BUILD            # read what the last runs left
    tests/robustness_figures.py BUILD --run      # run the fuzz label and the
                                                 # fault-injection suite first
    tests/robustness_figures.py BUILD --write docs/robustness.md

Figures, each from the test outputs that carry it:
  - fuzz executions per target and crashes: ctest's Testing/Temporary/
    LastTest.log of the fuzz label (libFuzzer's stat::number_of_executed_units,
    or the standalone driver's "done, N inputs"); committed corpus seeds and
    regression seeds from tests/fuzz/corpus/;
  - fault-injection cases: the "cases" properties of fault_injection_test's
    GoogleTest XML (written by --run to BUILD/robustness/fault_injection.xml);
  - data lost: the soak's verdicts when a soak result file exists
    (BUILD/robustness/soak.json: {"pages": N, "cycles": N, "hours": H,
    "checksum_failures": N}), else "no soak run".
With --write, the text between the markers
<!-- figures:begin --> and <!-- figures:end --> in the given file is replaced;
without it the table goes to stdout.
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def run(cmd, cwd):
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=cwd).returncode


def fuzz_figures(build):
    """{target: (executions or None, status)} from the last ctest log."""
    log = build / "Testing/Temporary/LastTest.log"
    out = {}
    if not log.exists():
        return out
    text = log.read_text(errors="replace")
    # ctest writes one block per test: "N/M Testing: NAME" ... "Test Passed." / "Test Failed."
    for block in re.split(r"\n(?=\d+/\d+ Testing: )", text):
        m = re.match(r"\d+/\d+ Testing: fuzz_(\w+)", block)
        if not m:
            continue
        target = m.group(1)
        execs = None
        for pat in (r"stat::number_of_executed_units:\s*(\d+)", r"standalone_driver: done, (\d+) inputs"):
            found = re.findall(pat, block)
            if found:
                execs = int(found[-1])
                break
        if "Test Passed." in block:
            status = "passed"
        elif "SKIPPED" in block or "Test Skipped" in block:
            status = "skipped"
        else:
            status = "FAILED"
        out[target] = (execs, status)
    return out


def corpus_figures():
    corpus = ROOT / "tests/fuzz/corpus"
    seeds, regressions = {}, []
    for d in sorted(p for p in corpus.iterdir() if p.is_dir()):
        files = [f for f in d.iterdir() if f.is_file()]
        seeds[d.name] = len(files)
        regressions += [f"{d.name}/{f.name}" for f in sorted(files) if f.name.startswith("regression-")]
    return seeds, regressions


def fault_cases(xml_path):
    """{test name: cases} from GoogleTest XML properties."""
    out = {}
    if not xml_path.exists():
        return out
    for tc in ET.parse(xml_path).getroot().iter("testcase"):
        cases = tc.get("cases")  # older GoogleTest: an attribute; newer: a <property> element
        for prop in tc.iter("property"):
            if prop.get("name") == "cases":
                cases = prop.get("value")
        failed = tc.find("failure") is not None
        if cases is not None:
            out[tc.get("name")] = (int(cases), failed)
    return out


def table(build):
    fuzz = fuzz_figures(build)
    seeds, regressions = corpus_figures()
    faults = fault_cases(build / "robustness/fault_injection.xml")
    soak_file = build / "robustness/soak.json"
    rows = []
    if fuzz:
        parts = []
        for t in sorted(fuzz):
            execs, status = fuzz[t]
            parts.append(f"{t} {execs if execs is not None else '?'}" + ("" if status == "passed" else f" ({status})"))
        crashes = sum(1 for _, s in fuzz.values() if s == "FAILED")
        rows.append(("fuzz executions in one `ctest -L fuzz` run, per target", ", ".join(parts) +
                     f"; crashes in this run: {crashes}", "`ctest -L fuzz` (`--run`)"))
    else:
        rows.append(("fuzz executions per target", "no fuzz run in this build tree", "`ctest -L fuzz`"))
    rows.append(("committed corpus seeds per target",
                 ", ".join(f"{t} {n}" for t, n in seeds.items()), "`tests/fuzz/corpus/`"))
    rows.append(("crashes found and kept as regression seeds", f"{len(regressions)}: " +
                 ", ".join(f"`{r}`" for r in regressions), "`tests/fuzz/corpus/*/regression-*`"))
    if faults:
        total = sum(n for n, _ in faults.values())
        failing = sum(1 for _, f in faults.values() if f)
        detail = ", ".join(f"{name} {n}" for name, (n, _) in sorted(faults.items()))
        rows.append(("fault-injection and crash cases", f"{total} ({detail}); failing tests: {failing}",
                     "`bin/fault_injection_test --gtest_output=xml:...` (`--run`)"))
    else:
        rows.append(("fault-injection and crash cases", "not run in this build tree", "`--run`"))
    if soak_file.exists():
        s = json.loads(soak_file.read_text())
        rows.append(("soak (the last passed run in this tree)",
                     f"{s.get('seconds', 0)} s ({s.get('hours', 0)} h), {s.get('cycles', 0)} demote/promote cycles, "
                     f"{s.get('hog_runs', 0)} hog runs, {s.get('pages', 0)} pages checked",
                     "`ctest -R vm_soak` (label `vm`), or `run_vm.sh --scenario soak --soak-json`"))
        rows.append(("data lost", f"{s.get('checksum_failures', '?')} pages wrong, {s.get('sigbus', '?')} SIGBUS, "
                     f"{s.get('write_errors', '?')} swap write errors", "the soak above"))
    else:
        rows.append(("data lost", "no soak result in this build tree (label `vm`)", ""))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Generated by `tests/robustness_figures.py` on {stamp} ({os.uname().nodename}, "
             f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}).", "",
             "| what | figure | source |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", type=pathlib.Path)
    ap.add_argument("--run", action="store_true", help="run the fuzz label and the fault-injection suite first")
    ap.add_argument("--write", type=pathlib.Path, help="replace the figures between the markers in this file")
    args = ap.parse_args()
    build = args.build.resolve()
    if args.run:
        out = build / "robustness"
        out.mkdir(exist_ok=True)
        run(["ctest", "-L", "fuzz", "--output-on-failure"], build)
        run([str(build / "bin/fault_injection_test"), f"--gtest_output=xml:{out / 'fault_injection.xml'}"], build)
    text = table(build)
    if not args.write:
        sys.stdout.write(text)
        return 0
    doc = args.write.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{args.write}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    args.write.write_text(head + BEGIN + "\n" + text + END + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
