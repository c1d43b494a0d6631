"""The self-contained HTML report of a run, and writing it (with the insights) into the run folder."""
from .html import ReportImages, render_report
from .publish import (add_report, build_report, cluster_summary_markdown, read_run_input, report_link, report_path,
                      republish_report)

__all__ = ["ReportImages", "add_report", "build_report", "cluster_summary_markdown", "read_run_input",
           "render_report", "report_link", "report_path", "republish_report"]
