"""Counts the lines every task logged today (an example of a cron-scheduled task)."""

import os
from datetime import date
from pathlib import Path

logs = Path(__file__).resolve().parents[2] / "logs"
today = date.today().isoformat()
print(f"{os.environ['REPORT_TITLE']} for {today} (run {os.environ['TASSE_RUN_ID']})")
for log in sorted(logs.glob("*/log.txt")):
    with log.open(encoding="utf-8", errors="replace") as lines:
        count = sum(1 for line in lines if line.startswith(today))
    print(f"{log.parent.name}: {count} line(s) today")
