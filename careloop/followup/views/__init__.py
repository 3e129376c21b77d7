"""Follow-up screens: plans and teams (plans.py), tasks and the workspace (tasks.py), figures."""
