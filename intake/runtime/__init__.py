"""Layer 7: running it: the daemon (APScheduler 3.x jobs), one poll cycle, checks, and the wiring
of conduct into the engine.
"""
