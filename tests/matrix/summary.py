#!/usr/bin/env python3
"""Per-release pass counts of the release matrix, from ctest's JUnit reports.

Usage: summary.py RELEASE=BUILD_DIR...

Each BUILD_DIR holds unit.xml and integration.xml, written by
tests/matrix/acceptance (or, for the host's release in tests/run-all.sh, by
its unit and integration phases). Prints one row per release; exits 1 when a
release has a failed or missing test, or no report at all.
"""
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def acceptance_list():
    """The integration tests every release must pass: MATRIX_INTEGRATION of
    tests/matrix/acceptance, read from there so that the two never differ."""
    text = (Path(__file__).resolve().parent / "acceptance").read_text()
    found = re.search(r"^MATRIX_INTEGRATION='([^']+)'$", text, re.M)
    if not found:
        sys.exit("summary.py: no MATRIX_INTEGRATION='...' line in tests/matrix/acceptance")
    return re.compile(found.group(1))


MATRIX_INTEGRATION = acceptance_list()
INTEGRATION_COUNT = MATRIX_INTEGRATION.pattern.count("|") + 1  # one per name above
# GoogleTest's line for one skipped test (not its summary lines).
GTEST_SKIP = re.compile(r"^\[  SKIPPED \] \S+ \(\d+ ms\)$")


def cases(report):
    """(name, passed, skipped checks) for each test case of a ctest JUnit report.

    A check a test skipped says so in its output: a line "SKIP ..." from the
    shell tests, "[  SKIPPED ]" from GoogleTest."""
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        run = case.get("status", "run") == "run"
        out = case.findtext("system-out") or ""
        skips = [line for line in out.splitlines()
                 if line.startswith("SKIP ") or GTEST_SKIP.match(line)]
        yield case.get("name"), run and not failed, skips


def release_row(release, build):
    build = Path(build)
    unit_xml, integ_xml = build / "unit.xml", build / "integration.xml"
    missing = [p.name for p in (unit_xml, integ_xml) if not p.is_file()]
    if missing:
        return [release, "-", "-", "FAIL (no report: " + ", ".join(missing) + ")"], False
    unit = list(cases(unit_xml))
    integ = [c for c in cases(integ_xml) if MATRIX_INTEGRATION.match(c[0])]
    unit_ok = sum(ok for _, ok, _ in unit)
    integ_ok = sum(ok for _, ok, _ in integ)
    failed = [n for n, ok, _ in unit + integ if not ok]
    skipped = [line for _, _, skips in integ for line in skips]
    absent = INTEGRATION_COUNT - len(integ)
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} check(s) skipped: " + "; ".join(
            line[:120] for line in skipped[:3]))
    if failed:
        notes.append("failed: " + ", ".join(failed[:6]) + (" ..." if len(failed) > 6 else ""))
    if absent:
        notes.append(f"{absent} acceptance test(s) did not run")
    good = not failed and not absent and unit_ok > 0
    verdict = "PASS" if good else "FAIL"
    return [release, f"{unit_ok}/{len(unit)}", f"{integ_ok}/{INTEGRATION_COUNT}",
            " ".join([verdict] + (["(" + "; ".join(notes) + ")"] if notes else []))], good


def main(args):
    if not args or any("=" not in a for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    rows, all_good = [], True
    for arg in args:
        release, build = arg.split("=", 1)
        row, good = release_row(release, build)
        rows.append(row)
        all_good &= good
    header = ["Slurm", "unit tests", "acceptance", "result"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
    print("\nrelease matrix (unit: every unit test; acceptance: " + ", ".join(
        MATRIX_INTEGRATION.pattern.strip("^$()").split("|")).replace("\\", "") + ")")
    for row in [header] + rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
