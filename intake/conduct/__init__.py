"""Layer 6: everything Code of Conduct: kinds, case rules, reply policy and caps, conflicts,
roster, team, commands, deadlines, stats, the parts of a case (parties, notes, mailing, opening,
assignment, referral, attachments) and the handlers.
"""
