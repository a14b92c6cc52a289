"""Per-task Python environments: dependency files, interpreters, content-addressed builds.

Owns reading what an environment must hold (`dependencies`, `poetry`), choosing an
interpreter (`interpreters`), planning and hashing (`plans`), running the installer
(`installer`), finding processes a crashed server left (`processes`), the cache of built
environments (`environments`) and building them ahead of runs (`provisioner`). Imports
the store (log layout) and the vocabulary; it does not know what a task is, only what an
environment is for (`plans.EnvNeeds`). Called by `tasks`, `runs`, `service` and the CLI.
"""
