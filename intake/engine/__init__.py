"""Layer 5: the road of one email: screen (machine mail), link (which case), then the case rules
and handler that the runtime passes in; pipeline, tokens, compose, parallel parsing. Knows no
Code of Conduct policy.
"""
