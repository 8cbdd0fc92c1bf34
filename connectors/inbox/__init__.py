"""The team inbox: a small web application where wijkteam members see and act on their alerts.

It reads the alerts and household-view topics (``store``), shows a team only
its own alerts (``web``), and turns every action of a member into an
AlertAction event (``actions``) that the household stage applies; the state
the page shows is the state the stream published, never a local copy.
"""
