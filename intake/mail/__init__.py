"""Layer 2: reading and writing one email, with no storage: parsing, reply text, sanitising, MIME,
authentication results, phrases.
"""
