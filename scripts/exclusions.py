#!/usr/bin/env python3
"""Reads scripts/exclusions.toml, the one list of what the RocksDB test runs exclude with
ringmerge on (gtest tests that fail by design or by a stock bug, db_stress flags that keep stock
bugs out of the crash test), and refuses an entry without its reason and evidence.

    python3 scripts/exclusions.py check            validate, print a summary
    python3 scripts/exclusions.py crashtest-flags [blackbox|whitebox]
                                                   the db_stress flags, one per line
    python3 scripts/exclusions.py gtest            '<suite> <mode> <wrapped_fs> <test>' lines
"""
import os
import sys
import tomllib

# RINGMERGE_EXCLUSIONS=<file> reads another file (to try an entry out).
DEFAULT = os.environ.get("RINGMERGE_EXCLUSIONS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "exclusions.toml")
KINDS = ("by-design", "stock-bug", "stock-flaky")
CRASH_KINDS = ("blackbox", "whitebox")


class ExclusionError(Exception):
    pass


def _need(entry, where, key, typ):
    v = entry.get(key)
    ok = isinstance(v, typ) and (v.strip() if isinstance(v, str) else len(v) > 0)
    if typ is list and ok:
        ok = all(isinstance(x, str) and x.strip() for x in v)
    if not ok:
        raise ExclusionError(f"{where}: needs a non-empty {key} ({typ.__name__})")
    return v


def _evidence(entry, where):
    kind = _need(entry, where, "kind", str)
    if kind not in KINDS:
        raise ExclusionError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    _need(entry, where, "reason", str)
    if kind == "by-design":
        _need(entry, where, "check", str)
    elif kind == "stock-flaky":
        # A timing-dependent stock test: it must be shown failing with ringmerge off, and it
        # gets a bounded number of solo reruns, never a pass.
        _need(entry, where, "off_repro", str)
        retries = entry.get("retries")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 1 <= retries <= 5:
            raise ExclusionError(f"{where}: a stock-flaky entry needs retries (an integer 1..5)")
    elif not (entry.get("off_repro") or entry.get("upstream")):
        raise ExclusionError(f"{where}: a stock-bug entry needs off_repro (a command showing the "
                             "same failure with RINGMERGE_MODE=off) or upstream references")
    for key in ("off_repro",):
        if key in entry:
            _need(entry, where, key, str)
    if "upstream" in entry:
        _need(entry, where, "upstream", list)


def load(path=DEFAULT):
    """Returns {"gtest": [...], "crashtest": [...]}, every entry validated."""
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ExclusionError(f"{path}: {e}") from e
    unknown = set(data) - {"gtest", "crashtest"}
    if unknown:
        raise ExclusionError(f"{path}: unknown tables {sorted(unknown)}")
    gtests, flags = data.get("gtest", []), data.get("crashtest", [])
    for i, e in enumerate(gtests):
        where = f"{path}: [[gtest]] #{i + 1} ({e.get('test', '?')})"
        for key in ("suite", "test", "wrapped_fs"):
            _need(e, where, key, str)
        _need(e, where, "modes", list)
        _evidence(e, where)
    for i, e in enumerate(flags):
        where = f"{path}: [[crashtest]] #{i + 1} ({' '.join(e.get('flags', ['?']))})"
        _need(e, where, "flags", list)
        if "kinds" in e:
            _need(e, where, "kinds", list)
            bad = set(e["kinds"]) - set(CRASH_KINDS)
            if bad:
                raise ExclusionError(f"{where}: kinds must be among {', '.join(CRASH_KINDS)}, "
                                     f"not {sorted(bad)}")
        for fl in e["flags"]:
            if not fl.startswith("--") or "=" not in fl:
                raise ExclusionError(f"{where}: flag {fl!r} is not --name=value")
        _evidence(e, where)
    return {"gtest": gtests, "crashtest": flags}


def gtest_known(path=DEFAULT):
    """{(suite, mode, test): wrapped_fs} of the tests that fail with ringmerge on (by design or
    by a stock bug); the stock-flaky ones are in gtest_flaky."""
    known = {}
    for e in load(path)["gtest"]:
        if e["kind"] == "stock-flaky":
            continue
        for mode in e["modes"]:
            known[(e["suite"], mode, e["test"])] = e["wrapped_fs"]
    return known


def gtest_flaky(path=DEFAULT):
    """{(suite, mode, test): (wrapped_fs, retries)} of the timing-dependent stock tests: one
    that fails is rerun alone up to `retries` times and counts as failed only if every rerun
    fails too; one that passes the first time is not a stale entry."""
    flaky = {}
    for e in load(path)["gtest"]:
        if e["kind"] == "stock-flaky":
            for mode in e["modes"]:
                flaky[(e["suite"], mode, e["test"])] = (e["wrapped_fs"], e["retries"])
    return flaky


def crashtest_flags(path=DEFAULT, kind=None):
    """The flags of the [[crashtest]] entries (those for this kind of run, if given)."""
    return [fl for e in load(path)["crashtest"] for fl in e["flags"]
            if kind is None or kind in e.get("kinds", CRASH_KINDS)]


def main(argv):
    path = DEFAULT
    cmd = argv[1] if len(argv) > 1 else "check"
    try:
        if cmd == "crashtest-flags":
            print("\n".join(crashtest_flags(path, argv[2] if len(argv) > 2 else None)))
        elif cmd == "gtest":
            for (suite, mode, test), fs in sorted(gtest_known(path).items()):
                print(suite, mode, fs, test)
            for (suite, mode, test), (fs, retries) in sorted(gtest_flaky(path).items()):
                print(suite, mode, fs, test, f"(stock-flaky, {retries} solo reruns)")
        elif cmd == "check":
            d = load(path)
            print(f"{path}: {len(d['gtest'])} gtest exclusions, {len(d['crashtest'])} crash test "
                  f"flag sets ({len(crashtest_flags(path))} flags)")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (ExclusionError, OSError) as e:
        print(f"exclusions: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
