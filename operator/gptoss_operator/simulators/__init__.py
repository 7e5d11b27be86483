"""Simulated model servers for tests, benchmarks and the local cluster's pod runner.

Never imported by the operator or the router (an import-linter contract says so): these are
stand-ins for vLLM, started as their own processes.
"""
