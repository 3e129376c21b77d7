"""The demo hospital: a deterministic data generator for ``careloop demo`` and the tests.

Not a Django app. ``careloop.demo.seed.seed_demo()`` creates departments, staff, patients,
encounters, follow-up plans and some follow-up history once; running it again changes nothing.
"""
