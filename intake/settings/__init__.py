"""Layer 1 (bottom): the settings file's schema, policy defaults, loading and durations. Imports
nothing of Intake but intake.errors.
"""
