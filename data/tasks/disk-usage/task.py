"""How much room the data folder takes (an example of a task with its own dependencies)."""

from pathlib import Path

import humanize  # from requirements.txt: installed in this task's environment, not Tasse's

data = Path(__file__).resolve().parents[2]
for folder in sorted(p for p in data.iterdir() if p.is_dir()):
    size = sum(f.lstat().st_size for f in folder.rglob("*") if not f.is_symlink())
    print(f"{folder.name:<10} {humanize.naturalsize(size)}")
