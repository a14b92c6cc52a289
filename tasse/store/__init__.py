"""The job store: where every record lives — run history, defined tasks, fire times, log files.

Owns the SQLAlchemy engines (`database`), the tables and their queries (`runs`), each
schedule's stored next fire time (`fire_times`), the log folder's layout (`log_files`),
retention, the Alembic migrations, and the program an SQL task's run executes in its own
process (`sql_task`: SQLAlchemy's, so here). The lowest part: it imports only the shared
vocabulary (`tasse.models`, `settings`, `errors`, `values`). Called by every part above.
"""
