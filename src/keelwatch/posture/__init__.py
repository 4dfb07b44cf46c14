"""Posture: every running container's risk, derived (never copied) from the inventory and its image's findings.

``compute.fleet`` reads the live containers, the findings of the digests they run (suppressions
applied) and freshness, and ``compute.group_by`` rolls them up by any grouping. Nothing is stored:
a re-match or a redeploy changes posture the moment it commits.
"""
