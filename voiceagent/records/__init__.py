"""Calls as data any process can read: records that outlive the call, requests, and one event stream.

Voice workers write; the API, jobs, schedules and tests read through :mod:`client`.  Every Redis
key is named in :mod:`keys`.
"""
