"""The fault suite: tickerlake's guarantees checked against real processes and real failures.

``python -m reliability`` (``make reliability``) runs every scenario; ``--short`` runs the
short form that ``make test`` includes. Each scenario injects one kind of failure
(concurrent runs, SIGKILL at seeded points, a service that goes away, a full or read-only
lake, hostile input) against the CLI as a user runs it, then counts what came in, what
landed, what was lost and what was doubled. The report goes to
``artifacts/reliability.json`` and is printed as a table.
"""
