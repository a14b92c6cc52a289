"""What a fire becomes: policies, the dispatcher, the ledger, execution and the runner.

Owns the decisions (`policies`: overlap, catch-up, retries), the dispatcher that applies
them, records of fires that did not run (`ledger`), each task's places and waiting line
(`places`), the global run slots (`slots`), carrying out one run (`execution`), the child
process (`runner`, the only module spawning task processes), writing its output
(`logs`) and reading it back live for a page (`live_log`). Imports tasks, envs, store
and the vocabulary. Called by `service` and the CLI.
"""
