"""When: crontab lines (Debian's meaning), trigger mappings, and the scheduler that fires them.

Owns the schedule schema task.yaml uses (`specs`), crontab parsing (`cronline`), fire times
on wall-clock time with cron(8)'s DST rules (`wallclock`, for lines and, through `mapping`,
cron mappings; `firing` asks it as APScheduler asks a trigger), triggers and listings of
upcoming fire times (`triggers`), the APScheduler wrapper (`scheduler`), and schedules in
words for the dashboard (`wording`); APScheduler and cron-descriptor are imported here and
nowhere else. Imports the store (for stored fire times) and the vocabulary; knows nothing
of tasks: it schedules names with triggers. Called by `tasks` (to check and build a task's
triggers) and `service`.
"""
