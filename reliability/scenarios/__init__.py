"""Scenario modules; each registers its scenarios with :func:`reliability.core.scenario`."""
