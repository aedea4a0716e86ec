"""Layer 6: everything Code of Conduct: kinds, case rules, reply policy and caps, conflicts,
roster, team, commands, deadlines, stats, alerts, cases and the handlers.
"""
