"""Runs as the operator sees them.

The run plan, Jobs, failure reasons, the admission queue, re-runs, schedules and cron, status
and conditions.
"""
