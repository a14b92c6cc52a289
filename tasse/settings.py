"""Settings, built once at the edge: flags > `TASSE_*` environment > `.env` > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tasse.values import check_schema_name, check_table_name, check_timezone

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _check_listen_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (like 127.0.0.1:4243 or 0.0.0.0:4243)")
    return value


def _empty_is_false(value: object) -> object:
    # `ST_JOBS_DELETE=` in an env file is off, as Supertask's flag (click) reads it.
    return False if isinstance(value, str) and not value.strip() else value


def _empty_is_none(value: str | None) -> str | None:
    return value or None


class Settings(BaseSettings):
    """Everything an operator can set; each field is also `TASSE_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TASSE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        # fields with Supertask's `ST_*` names as aliases are still set by their own name
        validate_by_name=True,
        # errors name the setting (`http_listen_address`), whichever name set it
        loc_by_alias=False,
    )

    data_dir: Path = Path("data")
    http_listen_address: Annotated[str, AfterValidator(_check_listen_address)] = Field(
        "127.0.0.1:4243",
        validation_alias=AliasChoices("TASSE_HTTP_LISTEN_ADDRESS", "ST_HTTP_LISTEN_ADDRESS"),
    )
    #: SQLAlchemy URL of the history store; empty means `sqlite:///<data_dir>/tasse.db`
    store_address: str = Field(
        "", validation_alias=AliasChoices("TASSE_STORE_ADDRESS", "ST_STORE_ADDRESS")
    )
    #: the database schema holding the store's tables (PostgreSQL, MariaDB; created if missing)
    store_schema_name: Annotated[str | None, AfterValidator(check_schema_name)] = Field(
        None, validation_alias=AliasChoices("TASSE_STORE_SCHEMA_NAME", "ST_STORE_SCHEMA_NAME")
    )
    #: the store's tables are `<name>_runs`, `<name>_alembic_version`, …; the defined tasks'
    #: table is `<name>` itself (Supertask's `--store-table-name jobs`: `jobs`), but for the
    #: default name, whose stores keep `tasse_tasks`
    store_table_name: Annotated[str, AfterValidator(check_table_name)] = Field(
        "tasse", validation_alias=AliasChoices("TASSE_STORE_TABLE_NAME", "ST_STORE_TABLE_NAME")
    )
    #: seconds to open a store connection; a store that takes longer counts as down
    store_connect_timeout: float = Field(5.0, gt=0, le=600)
    #: seconds a store statement (or a write's deadline) may take before it counts as failed
    store_statement_timeout: float = Field(10.0, gt=0, le=3600)
    #: records the store could not take are kept in `<data_dir>/journal/` up to this size
    journal_max_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    #: `/health` is 503 while the event loop lags more than this many seconds
    health_max_lag: float = Field(1.0, gt=0)
    log_level: str = "INFO"
    #: zone for schedules that name none
    timezone: Annotated[str, AfterValidator(check_timezone)] = "UTC"
    #: seconds between full rescans, for filesystems whose change events never arrive
    rescan_interval: float = Field(30.0, gt=0)
    #: quiet time after the last file event before a rescan
    debounce: float = Field(0.2, ge=0)
    #: seconds between SIGTERM and SIGKILL when a run is stopped
    kill_grace: float = Field(10.0, ge=0)
    #: a fire later than this (server busy or down) is recorded as missed
    misfire_grace_time: float = Field(60.0, gt=0)
    #: watch the tasks folder for changes (the polling rescan runs either way)
    watch: bool = True
    #: a run keeps this much of its output; the rest is counted and dropped
    max_run_log_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    #: log.txt rolls over to log.txt.1 past this size (checked as each run starts)
    max_task_log_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    #: how many rolled-over log.txt files are kept
    task_log_backups: int = Field(3, ge=0, le=100)
    #: finished runs (history and run logs) older than this many days are removed (0: never)
    keep_runs_days: float = Field(30.0, ge=0, le=36500)
    #: each task keeps only its newest this many runs (0: no limit)
    keep_runs: int = Field(1000, ge=0)
    #: seconds between retention passes (the first runs at start)
    retention_interval: float = Field(3600.0, gt=0)
    #: when set, mutating routes require `Authorization: Bearer <token>`
    api_token: SecretStr | None = None
    #: a file holding the token (for Docker secrets); used when api_token is not set
    api_token_file: Path | None = None
    #: a request body larger than this is refused with 413 (it is read into memory whole)
    max_request_bytes: int = Field(1024 * 1024, ge=1024)
    #: seconds a client has to send a whole request (line, headers, body) from the moment it
    #: connects or starts the request; then it gets 408 and the connection is closed
    http_request_timeout: float = Field(10.0, gt=0)
    #: seconds an idle keep-alive connection is kept open between requests
    http_idle_timeout: float = Field(5.0, gt=0)
    #: connections open at once (also at most a quarter of the open-file limit, so runs keep
    #: their file descriptors); a new one then replaces the longest waiting, or gets 503
    http_max_connections: int = Field(256, ge=1)
    #: seconds a client may take no data at all (a stream it stopped reading) before its
    #: connection is closed
    http_write_timeout: float = Field(30.0, gt=0)
    #: seconds between heartbeats on a quiet live stream (`/events`, a live log)
    events_heartbeat: float = Field(15.0, gt=0)
    #: events a `/events` client may have waiting before it is dropped (it then resumes)
    events_queue: int = Field(1000, ge=1)
    #: trigger steps (schedules x count) one `GET /tasks/{name}/next` may compute
    next_fires_budget: int = Field(10_000, ge=100)
    #: what builds task environments: uv when it is installed (`auto`), or virtualenv + pip
    installer: Literal["auto", "uv", "pip"] = "auto"
    #: a folder (or URL) of wheels the installer may use, for offline machines
    find_links: str | None = None
    #: environments built at the same time
    env_builds: int = Field(2, ge=1, le=32)
    #: seconds an installer may take before it is stopped and the build fails
    env_build_timeout: float = Field(900.0, gt=0)
    #: days an environment no current task needs is kept after its last use
    env_max_age_days: float = Field(30.0, ge=0)
    #: runs alive at once, over all tasks (0: no limit); beyond it runs are `queued`
    max_concurrent_runs: int = Field(0, ge=0)
    #: a seed file or URL of task definitions (JSON or YAML), kept applied
    pre_seed_jobs: Annotated[str | None, AfterValidator(_empty_is_none)] = Field(
        None, validation_alias=AliasChoices("TASSE_PRE_SEED_JOBS", "ST_JOBS_PRESEED")
    )
    #: seconds between fetches of a seed URL (None: only at start)
    pre_seed_interval: float | None = Field(None, gt=0)
    #: remove every API and seed task from the store at start
    pre_delete_jobs: Annotated[bool, BeforeValidator(_empty_is_false)] = Field(
        False, validation_alias=AliasChoices("TASSE_PRE_DELETE_JOBS", "ST_JOBS_DELETE")
    )
    #: crontab files (or URLs) kept applied, a task per line (`--crontab`, repeatable;
    #: in the environment a comma-separated list)
    crontab: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: crontabs with a user field before each command, like /etc/crontab, in places that
    #: do not say so (/etc/crontab and /etc/cron.d/* are read so anyway)
    system_crontab: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: one of several nodes sharing a PostgreSQL store (docs/cluster.md)
    cluster: bool = False
    #: this node's name in the cluster; empty means the host name
    node_name: Annotated[str | None, AfterValidator(_empty_is_none)] = Field(None, max_length=128)
    #: where a cluster's runs run: `node`, as subprocesses of the scheduler node; `workers`,
    #: as jobs on procrastinate queues that `tasse worker` nodes take
    run_on: Literal["node", "workers"] = "node"
    #: the queues a `tasse worker` takes runs from (a task's `queue:`; in the environment
    #: comma-separated)
    queues: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["default"])
    #: runs a `tasse worker` carries out at once
    concurrency: int = Field(4, ge=1, le=1000)

    # -- notifications (docs/notifications.md) ----------------------------------------------
    #: targets every task's outcomes go to: Apprise URLs or `webhook+https://…?secret=…`,
    #: each optionally `tag,tag=URL`; separated by spaces or new lines
    notify: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: a file of more targets in the same form, one a line (`#` comments): for secrets
    notify_file: Path | None = None
    #: the events a target hears of for tasks whose `notify:` does not say (`on:`)
    notify_on: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "failed",
            "timed_out",
            "missed",
            "retries_exhausted",
            "recovered",
            "env_failed",
        ]
    )
    #: the dashboard's address as people reach it, for links in messages
    public_url: Annotated[str | None, AfterValidator(_empty_is_none)] = None
    #: after a message to a target about a task, further ones within this many seconds
    #: are held and sent as one digest when it ends (0: no limit)
    notify_rate_window: float = Field(300.0, ge=0)
    #: delivery attempts before a notification is given up (and its target reported)
    notify_max_attempts: int = Field(10, ge=1, le=100)
    #: seconds before the first retry of a delivery; doubling up to `notify_retry_max`
    notify_retry_first: float = Field(5.0, gt=0)
    notify_retry_max: float = Field(600.0, gt=0)
    #: seconds one delivery attempt may take
    notify_timeout: float = Field(10.0, gt=0, le=300)
    #: deliveries at once (threads, off the loop)
    notify_workers: int = Field(2, ge=1, le=64)
    #: lines of the run's log a message ends with
    notify_log_lines: int = Field(20, ge=0, le=500)
    #: seconds between checks of the dead-man switches (`no_success_for`)
    notify_check_interval: float = Field(60.0, gt=0)
    #: for tests only: seconds added to the time the dead-man switches compare with
    clock_shift: float = 0.0

    @field_validator("notify", mode="before")
    @classmethod
    def _spaced(cls, value: object) -> object:
        # URLs hold commas (`?to=a@b,c@d`): targets are separated by spaces.
        return value.split() if isinstance(value, str) else value

    @field_validator("notify_on", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return value.replace(",", " ").split() if isinstance(value, str) else value

    @field_validator("crontab", "system_crontab", "queues", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # `TASSE_CRONTAB=/etc/crontab,/app/jobs.cron`: a list without JSON's quotes.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cluster")
    @classmethod
    def _cluster_on_postgresql(cls, value: bool, info: ValidationInfo) -> bool:
        # Leases and fire claims rest on PostgreSQL's row locks and ON CONFLICT.
        address = info.data.get("store_address") or "sqlite://"
        scheme = address.partition(":")[0].partition("+")[0]
        if value and scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"cluster mode needs a PostgreSQL --store-address (postgresql://…), not {scheme}"
            )
        return value

    @field_validator("run_on")
    @classmethod
    def _workers_in_a_cluster(cls, value: str, info: ValidationInfo) -> str:
        if value == "workers" and not info.data.get("cluster"):
            raise ValueError("runs go to workers only in a cluster: add --cluster")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @model_validator(mode="after")
    def _token_file_readable(self) -> Settings:
        if self.api_token is None and self.api_token_file is not None:
            try:
                token = self.api_token_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ValueError(f"api_token_file {str(self.api_token_file)!r}: {error}") from None
            if not token:
                raise ValueError(f"api_token_file {str(self.api_token_file)!r} is empty")
            object.__setattr__(self, "api_token", SecretStr(token))
        return self

    @property
    def listens_beyond_loopback(self) -> bool:
        """True unless the listen address is a loopback one (127.x, ::1, localhost)."""
        return not (self.host.startswith("127.") or self.host in ("::1", "localhost"))

    @property
    def tasks_dir(self) -> Path:
        """Where task folders live."""
        return self.data_dir / "tasks"

    @property
    def logs_dir(self) -> Path:
        """Where run output is written."""
        return self.data_dir / "logs"

    @property
    def venvs_dir(self) -> Path:
        """Where task environments are built."""
        return self.data_dir / "venvs"

    @property
    def journal_path(self) -> Path:
        """The journal of records waiting for the store."""
        return self.data_dir / "journal" / "records.jsonl"

    @property
    def store_url(self) -> str:
        """The history store's SQLAlchemy URL, defaulting to SQLite inside the data folder."""
        return self.store_address or f"sqlite:///{self.data_dir / 'tasse.db'}"

    @property
    def host(self) -> str:
        """The interface to listen on."""
        return self.http_listen_address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The TCP port to listen on."""
        return int(self.http_listen_address.rpartition(":")[2])
