"""Layer 4: moving mail in and out: mailbox sources (IMAP, Maildir), fetch, delivery, TLS, stage
signalling.
"""
