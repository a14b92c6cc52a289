"""When: crontab lines (Debian's meaning), trigger mappings, and the scheduler that fires them.

Owns the schedule schema task.yaml uses (`specs`), crontab parsing (`crontab`), triggers
and listings of upcoming fire times (`triggers`), and the APScheduler wrapper
(`scheduler`); APScheduler is imported here and nowhere else. Imports the store (for
stored fire times) and the vocabulary; knows nothing of tasks: it schedules names with
triggers. Called by `tasks` (to check and build a task's triggers) and `service`.
"""
