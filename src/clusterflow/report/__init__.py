"""The self-contained HTML report of a run, and writing it (with the insights) into the run folder."""
from .html import ReportImages, render_report
from .publish import (REPORT, add_report, cluster_summary_markdown, read_run_input, report_link, report_path,
                      write_report)

__all__ = ["REPORT", "ReportImages", "add_report", "cluster_summary_markdown", "read_run_input", "render_report",
           "report_link", "report_path", "write_report"]
