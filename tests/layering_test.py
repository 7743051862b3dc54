#!/usr/bin/env python3
"""Checks that the folders of src/ and include/relayban/ include only what the pipeline allows
(no cycles, nothing below cli/ includes cli/, filter/ knows nothing of scoring, the engine
nothing of the firewall, ...) and that each third-party library is used from its one folder.

usage: layering_test.py SOURCE_DIR        checks the tree; exit 1 with every bad edge
       layering_test.py --self-test       checks that a forbidden edge in a made-up tree is caught
"""
import os
import re
import sys
import tempfile

# Which folders a folder may include (besides itself). The pipeline reads top to bottom.
ALLOWED = {
    "core": set(),
    "spec": {"core"},
    "filter": {"core", "spec"},
    "score": {"core", "spec"},
    "policy": {"core", "spec", "score"},
    "engine": {"core", "spec", "filter", "score", "policy"},
    "config": {"core", "spec", "filter"},
    "report": {"core", "spec", "filter", "score", "policy", "engine"},
    "firewall": {"core"},
    "state": {"core"},
    "source": {"core", "spec", "filter", "state"},
    "control": {"core"},
    "fleet": {"core", "state"},
    "daemon": {"core", "spec", "filter", "score", "policy", "engine", "config", "report", "firewall", "state",
               "source", "control", "fleet"},
    "cli": {"core", "spec", "filter", "score", "policy", "engine", "config", "report", "firewall", "state",
            "source", "control", "daemon", "fleet"},
}
# Third-party headers and the only folders that may use them.
THIRD_PARTY = [
    (re.compile(r"^re2/"), "RE2", {"filter"}),
    (re.compile(r"^yaml-cpp/"), "yaml-cpp", {"config"}),
    (re.compile(r"^sqlite3\.h$"), "sqlite3", {"state"}),
    (re.compile(r"^(libnftnl|libmnl)/"), "libnftnl/libmnl", {"firewall"}),
    (re.compile(r"^systemd/"), "libsystemd", {"source", "daemon"}),
    (re.compile(r"^CLI/"), "CLI11", {"cli"}),
    (re.compile(r"^hiredis/"), "hiredis", {"fleet"}),
    (re.compile(r"^openssl/"), "OpenSSL", {"fleet"}),
    (re.compile(r"^nlohmann/"), "nlohmann-json", {"report", "control", "daemon", "cli"}),
]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def files_of(root):
    """Yields (folder, path) for every source and header of the tree."""
    for base, strip in ((os.path.join(root, "src"), 0), (os.path.join(root, "include", "relayban"), 0)):
        if not os.path.isdir(base):
            continue
        for folder in sorted(os.listdir(base)):
            d = os.path.join(base, folder)
            if not os.path.isdir(d):
                continue
            for dirpath, _, names in os.walk(d):
                for n in sorted(names):
                    if n.endswith((".cpp", ".hpp", ".h", ".cc")):
                        yield folder, os.path.join(dirpath, n)


def check(root):
    problems = []
    for folder, path in files_of(root):
        if folder not in ALLOWED:
            problems.append(f"{path}: folder '{folder}' is not in the layering table")
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        for m in INCLUDE.finditer(text):
            kind, name = m.group(1), m.group(2)
            line = text.count("\n", 0, m.start()) + 1
            target = None
            if name.startswith("relayban/"):
                parts = name.split("/")
                target = parts[1] if len(parts) > 2 else None  # relayban/version.hpp belongs to no stage
            elif kind == '"' and "/" in name:
                target = name.split("/")[0]  # a private header of another folder, from src/
            elif kind == "<":
                for pattern, lib, users in THIRD_PARTY:
                    if pattern.search(name) and folder not in users:
                        problems.append(f"{path}:{line}: {folder}/ uses {lib} ({name}); only {', '.join(sorted(users))}/ may")
                continue
            if target is None or target == folder:
                continue
            if target not in ALLOWED:
                problems.append(f"{path}:{line}: includes {name} from unknown folder '{target}'")
            elif target not in ALLOWED[folder]:
                problems.append(f"{path}:{line}: {folder}/ may not include {target}/ ({name})")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as root:
        def write(rel, text):
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "w").write(text)
        write("src/filter/a.cpp", '#include "relayban/score/rule_tracker.hpp"\n#include "filter/own.hpp"\n')
        write("src/engine/b.cpp", '#include "firewall/nft_firewall.hpp"\n')
        write("src/daemon/c.cpp", '#include "cli/check_command.hpp"\n#include <re2/re2.h>\n')
        write("src/config/d.cpp", '#include "relayban/filter/filter_set.hpp"\n#include <yaml-cpp/yaml.h>\n')
        found = check(root)
        expected = ["filter/ may not include score/", "engine/ may not include firewall/", "daemon/ may not include cli/",
                    "daemon/ uses RE2"]
        missing = [e for e in expected if not any(e in p for p in found)]
        allowed_flagged = [p for p in found if "config" in p]
        if missing or allowed_flagged or len(found) != 4:
            print("self-test failed: missing", missing, "wrongly flagged", allowed_flagged, "found", found)
            return 1
    print("self-test: the four forbidden edges were caught and nothing else")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1]
    problems = check(root)
    for p in problems:
        print(p)
    n = sum(1 for _ in files_of(root))
    print(f"{n} files checked, {len(problems)} forbidden include edges")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
