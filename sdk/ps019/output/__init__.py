"""Output formats for ``ps019 analyze`` / ``ps019 up``: pure formatters over one plain-data report.

    report = build_report([("preview", pass_result)], command="analyze", stack="acme/web/prod",
                          source_kind="state", source_path="stack-export.json")
    render_table(report, rich_console)     # --format table
    render_json(report)                    # --format json  -> str
    render_sarif(report)                   # --format sarif -> str (SARIF 2.1.0)
    render_junit(report)                   # --format junit -> str (JUnit XML, one test case per policy and resource)
"""

from ps019.output.json_format import render_json
from ps019.output.junit import render_junit
from ps019.output.report import SCHEMA_VERSION, build_report, control_catalogue
from ps019.output.sarif import build_sarif, render_sarif
from ps019.output.table import render_table

FORMATS = ("table", "json", "sarif", "junit")

__all__ = ["FORMATS", "SCHEMA_VERSION", "build_report", "build_sarif", "control_catalogue", "render_json",
           "render_junit", "render_sarif", "render_table"]
