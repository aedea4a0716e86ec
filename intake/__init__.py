"""Intake: email intake and confidential case handling for Code of Conduct teams."""

__version__ = "0.1.0"
