"""`make lint`'s dependency audit: pip-audit over requirements.lock, never a silent pass.

pip-audit says "No known vulnerabilities found" even when it could audit nothing (every
package skipped because the advisory service was unreachable). This wrapper reads its JSON
report and says which it was: checked and clean, vulnerable (exit 1), or NOT CHECKED. Not
checked is loud but does not fail lint offline, unless AUDIT_REQUIRED=1 (then exit 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def verdict(report: dict) -> tuple[str, list[str]]:
    """Return "vulnerable", "unchecked" or "clean" for a pip-audit JSON report, with lines."""
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    checked = len(dependencies) - len(skipped)
    lines = [
        f"  {d['name']} {d.get('version', '')}: {v['id']} (fix: {', '.join(v['fix_versions'])})"
        for d in vulnerable
        for v in d["vulns"]
    ]
    if vulnerable:
        return "vulnerable", ["dependency audit: KNOWN VULNERABILITIES", *lines]
    if skipped:
        reason = skipped[0]["skip_reason"]
        return "unchecked", [
            f"dependency audit: NOT CHECKED for {len(skipped)} of {len(dependencies)} packages "
            f"(only {checked} checked); the advisory data could not be read.",
            f"  first reason: {reason}",
            "  Run `make lint` where pypi.org is reachable before a release.",
        ]
    return "clean", [f"dependency audit: {checked} packages checked, no known vulnerabilities"]


def main() -> int:
    """Audit the lockfile; print the verdict; exit 1 if vulnerable."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "audit.json"
        command = [
            *(sys.executable, "-m", "pip_audit", "-r", str(ROOT / "requirements.lock")),
            *(
                "--require-hashes",
                "--disable-pip",
                "--vulnerability-service",
                "pypi",
                "--timeout",
                "15",
            ),
            *("--progress-spinner", "off", "--format", "json", "--output", str(output)),
        ]
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if not output.exists():
            status, lines = (
                "unchecked",
                [
                    "dependency audit: NOT CHECKED; pip-audit could not run:",
                    *("  " + line for line in (run.stderr.strip().splitlines() or ["?"])[-3:]),
                ],
            )
        else:
            status, lines = verdict(json.loads(output.read_text()))
    print("\n".join(lines), file=sys.stderr if status != "clean" else sys.stdout)
    if status == "vulnerable":
        return 1
    return 2 if status == "unchecked" and os.environ.get("AUDIT_REQUIRED") == "1" else 0


if __name__ == "__main__":
    sys.exit(main())
