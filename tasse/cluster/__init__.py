"""Several nodes on one PostgreSQL store: nodes, the scheduler lease, fire claims, commands
between nodes, and what dead nodes leave behind.

Owns the scheduler lease's keeper (`lease`: renewed every 2 s, 6 s to live; only its holder
fires), claiming fires before they become runs (`fires`), the commands one node leaves for
another (`commands`: a manual run for the scheduler, a cancel for the node running the
run), the leader's upkeep (`upkeep`: dead nodes' runs and claims, pruning), the list of
nodes (`nodes`) and the part as the service sees it (`node`: `Cluster`). The tables and
their queries are the store's (`store/leases.py`, `claims.py`, `commands.py`,
`orphans.py`, `run_jobs.py`); this part decides when to use them. With `--run-on workers`
runs go to `tasse worker` nodes: the scheduler queues and follows them (`remote`), a
worker takes and carries them out (`worker`, its procrastinate loop in `queue`, its logs
for the API in `worker_logs`). Imports runs, tasks, store and the vocabulary, and
procrastinate (only here). Called by `service` and `http` (the worker's application).
"""
