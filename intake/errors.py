"""Errors that reach the operator as one clear line, never a traceback."""


class IntakeError(Exception):
    """Base of every error the command line reports as a single line."""


class SettingsError(IntakeError):
    """The settings file, or a secret it names, is missing or wrong."""


class MailboxError(IntakeError):
    """The mailbox could not be reached or refused an operation."""


class LoginFailed(IntakeError):
    """A server refused our credentials: it will go on refusing until a person acts."""


class MailboxLoginFailed(MailboxError, LoginFailed):
    """The mailbox refused our login."""


class TokenRefused(LoginFailed):
    """The OAuth2 provider refused our refresh token (revoked, expired, consent withdrawn), or
    there is none yet: only `intake oauth login` mends it, so it is reported at once."""


class MailboxTokenRefused(MailboxLoginFailed, TokenRefused):
    """The mailbox side cannot log in: its OAuth2 token is refused."""


class OnboardingRequired(MailboxError):
    """A first run found old mail waiting: answering all of it needs an explicit choice."""


class DeliveryError(IntakeError):
    """The outbound transport could not be reached."""


class DeliveryLoginFailed(DeliveryError, LoginFailed):
    """The SMTP server refused our login."""


class DeliveryTokenRefused(DeliveryLoginFailed, TokenRefused):
    """The outbound side cannot log in: its OAuth2 token is refused."""


class TokenEndpointError(IntakeError):
    """The OAuth2 provider could not be reached, or answered with something unreadable: a
    passing failure, retried like any unreachable server."""
