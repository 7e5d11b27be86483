"""Development tools shared by tests/, bench/ and kind/: never installed, never imported by the operator.

``cluster``: the real local control plane started by kind/cluster (one per session, a namespace
per test, polling helpers). ``operator_process``: the operator run as ``gptoss-operator run``
against such a cluster, with its metrics read back. ``ports``: free ports for the processes
they start, outside the kernel's ephemeral range.
"""
