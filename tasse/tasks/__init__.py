"""What a task is and where it comes from: task.yaml, folders, API and seed definitions.

Owns the schema and the loaded task (`task`), reading task.yaml (`task_file`), scanning
folders (`discovery`), watching them (`watcher`, the only watchdog import) and rescanning
(`reloader`), the registry of known tasks, definitions from the API and seed files
(`definitions`, `catalog`, `seeds`), and a task's triggers (`triggers`). Imports envs,
schedule, store and the vocabulary. Called by `runs` (a run is of a task) and `service`.
"""
