"""The dependency audit never reports "no vulnerabilities" for packages it could not check."""

from tools.audit import verdict


def test_an_audit_that_skipped_packages_says_not_checked():
    report = {
        "dependencies": [
            {"name": "flask", "version": "3.1.3", "vulns": []},
            {"name": "celery", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    status, lines = verdict(report)
    assert status == "unchecked"
    assert "NOT CHECKED for 1 of 2 packages" in lines[0]


def test_a_vulnerable_package_is_named_with_its_fix_and_a_clean_audit_counts_packages():
    vulnerable = {
        "dependencies": [
            {
                "name": "flask",
                "version": "0.1",
                "vulns": [{"id": "PYSEC-1", "fix_versions": ["3.1.3"]}],
            }
        ]
    }
    clean = {"dependencies": [{"name": "flask", "version": "3.1.3", "vulns": []}]}

    assert verdict(vulnerable) == (
        "vulnerable",
        ["dependency audit: KNOWN VULNERABILITIES", "  flask 0.1: PYSEC-1 (fix: 3.1.3)"],
    )
    assert verdict(clean)[1] == ["dependency audit: 1 packages checked, no known vulnerabilities"]
